#!/usr/bin/env bash
# README command 1 (the main job on a fresh machine): install, build, and run DeepInfant Edge on a bundled
# real recording. Usage: bash deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build -c release --product deepinfant-edge
bin=.build/release/deepinfant-edge
echo; echo "== classify the bundled recordings (embedded default model)"
"$bin" classify samples/cry-hungry.flac samples/speech.flac samples/dog.flac || true
echo; echo "== log-mel features of the cry, as the model sees them"
"$bin" features samples/cry-hungry.flac --out /tmp/deepinfant-cry-hungry.npy
echo; echo "== front-end throughput"
"$bin" bench features --seconds 120 --repeats 1
