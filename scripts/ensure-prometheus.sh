#!/usr/bin/env bash
# Make `promtool` available for the Prometheus rule tests (tests/test_deploy.py).
# Installs Debian's `prometheus` package when promtool is missing; a quiet no-op
# otherwise. Idempotent: safe to run before every test run.
#
# Note: on a host that runs systemd, installing the package also enables a local
# prometheus.service; CI containers and the dev image have no init, so nothing starts.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-prometheus: promtool is missing and apt-get is unavailable;" \
         "install Prometheus' promtool by other means" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "ensure-prometheus: promtool is missing; run as root or install the" \
             "Debian package 'prometheus'" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if ! command -v promtool >/dev/null 2>&1; then
    echo "ensure-prometheus: package 'prometheus' installed but promtool is not on PATH" >&2
    exit 1
fi
