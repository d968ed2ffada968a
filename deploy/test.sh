#!/usr/bin/env bash
# README command 2: install what the tests need, build, and run every test (unit, parity, real ALSA
# via the file plugin, real model files). Usage: bash deploy/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build --build-tests
# Swift Testing runs suites in parallel; the 2-core CI machines are fine with the default.
swift test --skip-build "$@"
