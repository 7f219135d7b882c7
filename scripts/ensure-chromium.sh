#!/usr/bin/env bash
# Make a headless Chromium available for the report.html browser test
# (tests/test_report_browser.py). Installs Debian's `chromium` package when chromium
# is missing; a quiet no-op otherwise. Idempotent: safe to run before every test run.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian-tool.sh" chromium chromium
