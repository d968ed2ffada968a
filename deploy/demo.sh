#!/usr/bin/env bash
# README command 1 — the main job on a fresh machine: installs what it needs, builds, starts a local
# mosquitto (unless DEEPINFANT_BROKER is set), and runs the agent on bundled real recordings through the
# real ALSA capture path (the ALSA `file` plugin, paced to real time), showing the MQTT messages as a
# subscriber sees them. With a microphone: DEEPINFANT_AUDIO_DEVICE=default bash deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
work=$(mktemp -d)
cleanup() { [ -n "${sub_pid:-}" ] && kill "$sub_pid" 2>/dev/null; [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A quiet build: one progress line; the whole compiler log only if it fails.
echo "== building deepinfant-edge (release, as deploy/install.sh builds it; the first build takes a few minutes)"
set +e
swift build -c release --static-swift-stdlib --product deepinfant-edge 2>&1 | tee "$work/build.log" \
  | grep --line-buffered -oE '^\[[0-9]+/[0-9]+\]' | while read -r step; do printf '\r   %s compiling' "$step"; done
build_status=${PIPESTATUS[0]}
set -e
printf '\r'
if [ "$build_status" -ne 0 ]; then
  cat "$work/build.log"
  echo "== build failed (exit $build_status); the log is above" >&2
  exit "$build_status"
fi
echo "   $(grep -E "^Build complete" "$work/build.log" | tail -1)"
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/deepinfant-edge"

broker="${DEEPINFANT_BROKER:-}"
if [ -z "$broker" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18830)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  broker_pid=$!
  broker="mqtt://127.0.0.1:$port"
  sleep 0.3
  echo "== local mosquitto on $broker"
fi
host=$(echo "$broker" | sed -E 's#^mqtts?://([^:/]+).*#\1#'); port=$(echo "$broker" | sed -E 's#^mqtts?://[^:]+:?([0-9]*).*#\1#'); port=${port:-1883}

device="${DEEPINFANT_AUDIO_DEVICE:-}"
seconds=26
if [ -z "$device" ]; then
  # No microphone here: an ALSA PCM that captures a bundled cry, then speech, then a dog, from a raw file.
  "$bin" raw-audio samples/cry-hungry.flac samples/speech.flac samples/dog.flac --gap 2 --out "$work/nursery.raw"
  cat > "$work/asound.conf" <<CONF
pcm.demo { type file slave.pcm { type null } file "/dev/null" format "raw" infile "$work/nursery.raw" }
CONF
  export ALSA_CONFIG_PATH="$work/asound.conf"
  device=demo
fi

echo "== subscriber: mosquitto_sub -v -t 'deepinfant/#' -t 'homeassistant/+/demo/#'"
# Each message as a user reads it (deploy/demo-view.py: type and reason first); raw in $work/mqtt.txt.
if command -v python3 >/dev/null; then view=(python3 deploy/demo-view.py); else view=(sed -u 's/^/  mqtt> /'); fi
mosquitto_sub -h "$host" -p "$port" -v -t 'deepinfant/#' -t 'homeassistant/+/demo/#' > >(tee "$work/mqtt.txt" | "${view[@]}") &
sub_pid=$!
sleep 0.3
echo "== deepinfant-edge run --audio-device $device --real-time (for ${seconds} s): cry at 2-9 s, speech at 11-19 s, dog at 21-26 s"
echo "   (cry gate: Google's YAMNet, converted and run by our engine, + a cry head on its embeddings; then the reason CRNN)"
"$bin" run --broker "$broker" --node-id demo --audio-device "$device" --real-time \
  --state-dir "$work/state" --duration "$seconds" --log-level notice
# The last diagnostics and the retained 'offline' arrive after the agent exits: wait for them (<= 5 s).
for _ in $(seq 50); do grep -q '/status offline' "$work/mqtt.txt" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
if grep -q '/status offline' "$work/mqtt.txt"; then echo "== agent stopped cleanly (its last message: status offline)"; else echo "== agent stopped; no 'offline' seen within 5 s"; fi
echo "== what the node hears, as AudioSet classes (deepinfant-edge tag --top 2), first patches of each recording:"
for f in samples/cry-hungry.flac samples/speech.flac samples/dog.flac; do "$bin" tag --top 2 "$f" | head -4; done
