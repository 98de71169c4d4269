#!/usr/bin/env bash
# Finds a Python 3 interpreter for the end-to-end test that re-verifies an audit export
# independently (tests/verify_audit.py, standard library only), installing Debian's python3
# when none is on PATH, then prints the export line the test reads.
# Idempotent; progress goes to stderr, stdout carries only `export ...` lines.
set -euo pipefail

if ! command -v python3 >/dev/null 2>&1; then
    echo "setup-python: installing python3" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends python3 >&2
fi

PYTHON="$(command -v python3)"
"$PYTHON" --version >&2
echo "export REMEDIATION_TEST_PYTHON=$PYTHON"
