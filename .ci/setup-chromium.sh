#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver are installed (Debian's `chromium` and
# `chromium-driver`), then prints the export lines the approval page's browser test and the report's PDF test read.
# Idempotent: installs only when chromedriver is missing. Progress goes to stderr; stdout
# carries only `export ...` lines.
set -euo pipefail

DRIVER=/usr/bin/chromedriver

if ! [ -x "$DRIVER" ] || ! command -v chromium >/dev/null 2>&1; then
    echo "setup-chromium: installing chromium and chromium-driver" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi

if ! "$DRIVER" --version >&2; then
    echo "setup-chromium: $DRIVER does not run" >&2
    exit 1
fi

echo "export REMEDIATION_TEST_CHROMEDRIVER=$DRIVER"
# The browser itself, for the compliance report's print-to-PDF test (tests/e2e/report.rs).
echo "export REMEDIATION_TEST_CHROMIUM=$(command -v chromium)"
