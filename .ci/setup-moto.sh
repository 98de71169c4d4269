#!/usr/bin/env bash
# Installs moto (an AWS emulator) into a reusable virtualenv and starts two local servers:
# one that accepts any credentials (REMEDIATION_TEST_MOTO) and one that enforces IAM
# policies (REMEDIATION_TEST_MOTO_AUTH), for the AWS IAM connector's integration tests.
# Idempotent: reuses the virtualenv and servers that already answer.
# Prints only progress on stderr and `export VAR=value` lines on stdout.
set -euo pipefail

VENV="${REMEDIATION_MOTO_VENV:-$HOME/.cache/remediation/moto-venv}"
LOGDIR="${REMEDIATION_MOTO_LOGDIR:-$HOME/.cache/remediation}"
HOST=127.0.0.1
PORT="${REMEDIATION_MOTO_PORT:-5000}"
AUTH_PORT="${REMEDIATION_MOTO_AUTH_PORT:-5001}"

log() { echo "setup-moto: $*" >&2; }

mkdir -p "$LOGDIR"
if [ ! -x "$VENV/bin/moto_server" ]; then
    log "creating virtualenv in $VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    log "installing moto[server]"
    "$VENV/bin/pip" install --quiet 'moto[server]' >&2
fi

answers() {
    curl -fsS -o /dev/null "http://$HOST:$1/moto-api/" 2>/dev/null
}

start() { # port, log name, extra env
    local port="$1" name="$2"
    shift 2
    if answers "$port"; then
        log "moto already answers on $HOST:$port"
        return
    fi
    log "starting moto on $HOST:$port (log $LOGDIR/$name.log)"
    env "$@" nohup "$VENV/bin/moto_server" -H "$HOST" -p "$port" >"$LOGDIR/$name.log" 2>&1 &
    for _ in $(seq 1 100); do
        if answers "$port"; then
            return
        fi
        sleep 0.2
    done
    log "moto did not answer on $HOST:$port; see $LOGDIR/$name.log"
    exit 1
}

start "$PORT" moto
# With INITIAL_NO_AUTH_ACTION_COUNT=N moto accepts the first N requests with any credentials
# (enough for the tests to create users with keys and policies) and then checks every request
# against the caller's IAM policies.
start "$AUTH_PORT" moto-auth INITIAL_NO_AUTH_ACTION_COUNT=0

echo "export REMEDIATION_TEST_MOTO=http://$HOST:$PORT"
echo "export REMEDIATION_TEST_MOTO_AUTH=http://$HOST:$AUTH_PORT"
