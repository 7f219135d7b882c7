#!/usr/bin/env bash
# usage: ensure-debian-tool.sh COMMAND PACKAGE
# Make COMMAND available for the tests: installs the Debian package PACKAGE when
# COMMAND is missing; a quiet no-op otherwise. Idempotent: safe before every test run.
# Used by ensure-prometheus.sh (promtool) and ensure-chromium.sh (chromium).
set -euo pipefail

tool=$1
package=$2
me="ensure-debian-tool ($tool)"

if command -v "$tool" >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "$me: $tool is missing and apt-get is unavailable; install $package by other means" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "$me: $tool is missing; run as root or install the Debian package '$package'" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null

if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$me: package '$package' installed but $tool is not on PATH" >&2
    exit 1
fi
