#!/usr/bin/env bash
# Make a headless Chromium available for the report.html browser test
# (tests/test_report_browser.py). Installs Debian's `chromium` package when no
# chromium is on PATH; a quiet no-op otherwise. Idempotent: safe before every test run.
set -euo pipefail

for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: chromium is missing and apt-get is unavailable;" \
         "install Chromium by other means" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "ensure-chromium: chromium is missing; run as root or install the" \
             "Debian package 'chromium'" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null

if ! command -v chromium >/dev/null 2>&1; then
    echo "ensure-chromium: package 'chromium' installed but chromium is not on PATH" >&2
    exit 1
fi
