#!/usr/bin/env bash
# Live benchmark of the whole agent at 1x real time through the ALSA file plugin and a local mosquitto:
# CPU % of one core, peak RSS, event latency (window end -> subscriber receipt) and cry-onset latency.
# Usage: swift build -c release && bash deploy/bench-live.sh [seconds-of-silence]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build -c release --show-bin-path)/deepinfant-edge"
work=$(mktemp -d); trap 'kill $sub_pid $broker_pid 2>/dev/null; rm -rf "$work"' EXIT
silence=${1:-30}
chunk=${CHUNK:-1600}   # samples per capture chunk (1600 = 100 ms, the default)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/m.conf"
/usr/sbin/mosquitto -c "$work/m.conf" >/dev/null 2>&1 & broker_pid=$!
sleep 0.3
printf '[audio]\nchunk_samples = %s\n' "$chunk" > "$work/config.toml"
# Scenario: $silence s of silence, then the bundled cry repeated 4 times (28 s of continuous crying), then 6 s quiet.
"$bin" raw-audio --gap 0 --out "$work/cry4.raw" samples/cry-hungry.flac samples/cry-hungry.flac samples/cry-hungry.flac samples/cry-hungry.flac >/dev/null
python3 - "$work" "$silence" <<'PY'
import sys, numpy as np
w, s = sys.argv[1], float(sys.argv[2])
cry = np.fromfile(f"{w}/cry4.raw", dtype="<i2")
np.concatenate([np.zeros(int(s*16000), "<i2"), cry, np.zeros(6*16000, "<i2")]).tofile(f"{w}/live.raw")
PY
printf 'pcm.live { type file slave.pcm { type null } file "/dev/null" format "raw" infile "%s/live.raw" }\n' "$work" > "$work/asound.conf"
mosquitto_sub -p "$port" -t 'deepinfant/bench/#' -v -F '%U %t %p' > "$work/sub.log" & sub_pid=$!
sleep 0.3
total=$(python3 -c "print($silence + 28 + 6)")
start=$(date +%s.%N)
ALSA_CONFIG_PATH="$work/asound.conf" /usr/bin/time -f '%U %S %M' -o "$work/time.txt" \
  "$bin" run --config "$work/config.toml" --broker "mqtt://127.0.0.1:$port" --node-id bench --audio-device live --real-time \
  --state-dir "$work/state" --duration "$total" --log-level error
sleep 0.5
python3 - "$work" "$silence" "$start" "$total" "$chunk" <<'PY'
import sys, json, statistics
w, silence, start, total = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
user, sys_, maxrss = open(f"{w}/time.txt").read().split()
cpu = float(user) + float(sys_)
lat, onset = [], None
from datetime import datetime
for line in open(f"{w}/sub.log"):
    ts, topic, payload = line.split(" ", 2)
    if topic.endswith("/event"):
        e = json.loads(payload)
        t = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        lat.append((float(ts) - t) * 1000)
        if e["type"] == "start" and onset is None:
            onset = float(ts) - (start + silence)
lat.sort()
print(f"audio {total:.0f} s at 1x real time ({silence:.0f} s silence, 28 s crying, 6 s quiet), chunks of {sys.argv[5]} samples")
print(f"CPU {cpu:.2f} s = {100*cpu/total:.2f} % of one core on average; peak RSS {int(maxrss)/1024:.1f} MB")
if lat:
    p = lambda q: lat[min(len(lat)-1, int(q*len(lat)))]
    print(f"events {len(lat)}: window end -> subscriber receipt p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms (window end = end of its audio; includes waiting for the chunk that completes it)")
print(f"cry onset -> first start event received: {onset:.2f} s" if onset is not None else "no start event")
PY
