#!/usr/bin/env bash
# README command 2: install what the tests need, build, and run every test (unit, parity, real ALSA
# via the file plugin, real model files). Usage: bash deploy/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build --build-tests

# --no-parallel: the suites start brokers, ALSA devices and child processes and check timings; on a
# 2-core machine they are steadier one at a time (the whole run takes a few minutes).
swift test --skip-build --no-parallel "$@"
