#!/usr/bin/env bash
# Checks the node's Home Assistant discovery against a real Home Assistant (the shared harness):
# starts a loopback broker and HA, runs MessagingTests' homeAssistantAcceptsDiscovery (entity ids, states,
# the number command template, no HA errors, removal), and always stops HA again. About 30 s
# (plus ~90 s the first time, when the harness installs Home Assistant into $HA_ROOT).
# Usage: bash deploy/mosquitto/ha-check.sh        (from the project root; HA_HARNESS, HA_ROOT, SCRATCH optional)
set -euo pipefail
cd "$(dirname "$0")/../.."
H=${HA_HARNESS:-$(cd .. && pwd)/shared/tools/ha/ha-harness.sh}
[ -x "$H" ] || { echo "no Home Assistant harness at $H (set HA_HARNESS)"; exit 2; }
export HA_ROOT=${HA_ROOT:-${TMPDIR:-/tmp}/ha-deepinfant}
SCRATCH=${SCRATCH:-.build-mqtt}

trap '"$H" stop >/dev/null 2>&1 || true' EXIT
eval "$("$H" broker-start | grep -E '^BROKER_(PID|PORT)=')"
"$H" start "$BROKER_PORT" >/dev/null
DEEPINFANT_HA_HARNESS="$H" DEEPINFANT_HA_BROKER_PORT="$BROKER_PORT" \
  swift test --scratch-path "$SCRATCH" --filter homeAssistantAcceptsDiscovery
