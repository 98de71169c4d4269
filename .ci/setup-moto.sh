#!/usr/bin/env bash
# Installs moto (an AWS emulator) into a reusable virtualenv and starts a local server that
# accepts any credentials (REMEDIATION_TEST_MOTO), for the AWS IAM connector's integration
# tests. It also names the server program (REMEDIATION_TEST_MOTO_SERVER): the permission test
# starts its own short-lived instance that enforces IAM policies.
# Idempotent: reuses the virtualenv and a server that already answers.
# Prints only progress on stderr and `export VAR=value` lines on stdout.
set -euo pipefail

VENV="${REMEDIATION_MOTO_VENV:-$HOME/.cache/remediation/moto-venv}"
LOGDIR="${REMEDIATION_MOTO_LOGDIR:-$HOME/.cache/remediation}"
HOST=127.0.0.1
PORT="${REMEDIATION_MOTO_PORT:-5000}"

log() { echo "setup-moto: $*" >&2; }

# The pinned version: a reused virtualenv holding any other version is rebuilt.
MOTO_VERSION=5.2.5

mkdir -p "$LOGDIR"
if [ ! -x "$VENV/bin/moto_server" ] || [ "$(cat "$VENV/.moto-version" 2>/dev/null)" != "$MOTO_VERSION" ]; then
    rm -rf "$VENV"
    log "creating virtualenv in $VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    log "installing moto[server] $MOTO_VERSION"
    "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION" >&2
    echo "$MOTO_VERSION" >"$VENV/.moto-version"
fi

answers() { # port; the venv's Python, so no curl is needed
    "$VENV/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://$HOST:$1/moto-api/" >/dev/null 2>&1
}

start() { # port, log name
    local port="$1" name="$2"
    if answers "$port"; then
        log "moto already answers on $HOST:$port"
        return
    fi
    log "starting moto on $HOST:$port (log $LOGDIR/$name.log)"
    nohup "$VENV/bin/moto_server" -H "$HOST" -p "$port" >"$LOGDIR/$name.log" 2>&1 &
    for _ in $(seq 1 100); do
        if answers "$port"; then
            return
        fi
        sleep 0.2
    done
    log "moto did not answer on $HOST:$port; see $LOGDIR/$name.log"
    exit 1
}

start "$PORT" "moto-$PORT"

echo "export REMEDIATION_TEST_MOTO=http://$HOST:$PORT"
echo "export REMEDIATION_TEST_MOTO_SERVER=$VENV/bin/moto_server"
