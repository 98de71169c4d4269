#!/usr/bin/env bash
# Installs OpenLDAP's server and client tools for the LDAP connector's real-server tests.
# Idempotent; progress goes to stderr, the line the tests need to stdout. The tests start
# their own slapd with a generated configuration: the database the Debian package may create
# is not used.
set -euo pipefail

if [ ! -x /usr/sbin/slapd ] || ! command -v slapadd >/dev/null 2>&1; then
    echo "setup-slapd: installing slapd and ldap-utils" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slapd ldap-utils >&2
    # The package starts its own daemon on port 389; the tests do not need it.
    if command -v service >/dev/null 2>&1; then
        service slapd stop >&2 2>&1 || true
    fi
fi

echo "export REMEDIATION_TEST_SLAPD=/usr/sbin/slapd"
