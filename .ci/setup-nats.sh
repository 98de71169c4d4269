#!/usr/bin/env bash
# Makes sure a NATS server with JetStream answers on 127.0.0.1:4222 for remediation-nats's
# integration tests, and names the nats-server program their private servers (TLS, auth,
# restarts) are started from. The machine normally runs the shared server already; when the
# port does not answer, a private `nats-server -js` is started in the background on it, with a
# temporary store. Idempotent. Progress goes to stderr; stdout carries only `export` lines:
#
#     eval "$(bash .ci/setup-nats.sh)"     # as .ci/run does
#     . .ci/setup-nats.sh                  # or sourced: the variables are exported directly
#
# Prints REMEDIATION_TEST_NATS and REMEDIATION_TEST_NATS_SERVER_BIN. REMEDIATION_NATS_PORT
# picks another port than 4222.

_setup_nats() {
    local host=127.0.0.1 port="${REMEDIATION_NATS_PORT:-4222}" bin info store logfile
    log() { echo "setup-nats: $*" >&2; }

    # The first line the server sends (INFO {...}), or nothing.
    info_line() {
        timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port && head -n 1 <&3" 2>/dev/null || true
    }

    bin="${REMEDIATION_TEST_NATS_SERVER_BIN:-}"
    if [ -z "$bin" ]; then
        bin="$(command -v nats-server 2>/dev/null || true)"
    fi
    if [ -z "$bin" ] && [ -x /usr/sbin/nats-server ]; then
        bin=/usr/sbin/nats-server
    fi
    if [ -z "$bin" ]; then
        log "installing nats-server"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >&2 ||
            { log "cannot install nats-server"; return 1; }
        bin="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"
    fi
    if [ ! -x "$bin" ]; then
        log "no nats-server program at $bin"
        return 1
    fi
    log "nats-server: $bin ($("$bin" --version 2>&1))"

    info="$(info_line)"
    if [ -z "$info" ]; then
        store="$(mktemp -d -t remediation-nats-XXXXXX)"
        logfile="$store/nats-server.log"
        log "nothing answers on $host:$port; starting nats-server -js there (store $store, log $logfile)"
        # Detached, with no tie to our stdout: `$(bash setup-nats.sh)` must not wait for it.
        setsid "$bin" -js -a "$host" -p "$port" -sd "$store" -l "$logfile" </dev/null >/dev/null 2>&1 &
        for _ in $(seq 1 50); do
            info="$(info_line)"
            [ -n "$info" ] && break
            sleep 0.2
        done
        if [ -z "$info" ]; then
            log "nats-server did not answer on $host:$port within 10 s; its log:"
            tail -n 20 "$logfile" >&2 2>/dev/null || true
            return 1
        fi
    fi
    case "$info" in
    INFO*'"jetstream":true'*) ;;
    INFO*)
        log "the server on $host:$port answers without JetStream; the tests need one started with -js"
        return 1
        ;;
    *)
        log "something on $host:$port answers, but not as a NATS server: $info"
        return 1
        ;;
    esac
    log "NATS with JetStream answers on $host:$port"

    REMEDIATION_TEST_NATS="nats://$host:$port"
    REMEDIATION_TEST_NATS_SERVER_BIN="$bin"
    echo "export REMEDIATION_TEST_NATS=$REMEDIATION_TEST_NATS"
    echo "export REMEDIATION_TEST_NATS_SERVER_BIN=$REMEDIATION_TEST_NATS_SERVER_BIN"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: export into the caller's shell, and leave its options alone.
    if _setup_nats >/dev/null; then
        export REMEDIATION_TEST_NATS REMEDIATION_TEST_NATS_SERVER_BIN
    fi
else
    set -euo pipefail
    _setup_nats
fi
