#!/usr/bin/env bash
# Make `promtool` available for the Prometheus rule tests (tests/test_deploy_prometheus.py).
# Installs Debian's `prometheus` package when promtool is missing; a quiet no-op
# otherwise. Idempotent: safe to run before every test run.
#
# Note: on a host that runs systemd, installing the package also enables a local
# prometheus.service; CI containers and the dev image have no init, so nothing starts.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian-tool.sh" promtool prometheus
