#!/usr/bin/env bash
# Live benchmark of the whole agent at 1x real time through the ALSA file plugin and a local mosquitto:
# CPU % of one core, peak RSS, event latency (window end -> subscriber receipt) and cry-onset latency.
# Usage: bash deploy/bench-live.sh [seconds-of-silence]   (CHUNK=1600 to compare chunk sizes; BIN=path for another binary)
# Builds the release binary as deploy/install.sh does (Swift runtime linked statically).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then swift build -c release --static-swift-stdlib --product deepinfant-edge >/dev/null; fi
bin="${BIN:-$(swift build -c release --static-swift-stdlib --show-bin-path)/deepinfant-edge}"
work=$(mktemp -d); trap 'kill $sub_pid $broker_pid 2>/dev/null; rm -rf "$work"' EXIT
silence=${1:-30}
chunk=${CHUNK:-512}   # samples per capture chunk (512 = 32 ms, the default)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/m.conf"
/usr/sbin/mosquitto -c "$work/m.conf" >/dev/null 2>&1 & broker_pid=$!
sleep 0.3
printf '[audio]\nchunk_samples = %s\n' "$chunk" > "$work/config.toml"
# Scenario: $silence s of silence, the bundled cry 4 times (28 s of continuous crying), 6 s quiet, then the cry
# once more after 10.000, 10.128, 10.256 and 10.384 s of quiet (the onset lands at other phases of the 0.512 s
# analysis grid), 6 s quiet. Onsets are the segment starts in samples, written to onsets.txt.
"$bin" raw-audio --gap 0 --out "$work/cry.raw" samples/cry-hungry.flac >/dev/null
python3 - "$work" "$silence" <<'PY'
import sys, numpy as np
w, s = sys.argv[1], float(sys.argv[2])
cry = np.fromfile(f"{w}/cry.raw", dtype="<i2")
quiet = lambda sec: np.zeros(int(round(sec * 16000)), "<i2")
parts, onsets, n = [], [], 0
def add(a, onset=False):
    global n
    if onset: onsets.append(n)
    parts.append(a); n += len(a)
add(quiet(s)); add(np.concatenate([cry] * 4), onset=True); add(quiet(6))
for k in range(4):
    add(quiet(10 + 0.128 * k)); add(cry, onset=True)
add(quiet(6))
np.concatenate(parts).tofile(f"{w}/live.raw")
open(f"{w}/onsets.txt", "w").write("\n".join(map(str, onsets)))
print(f"{n / 16000:.3f}", file=open(f"{w}/total.txt", "w"))
PY
printf 'pcm.live { type file slave.pcm { type null } file "/dev/null" format "raw" infile "%s/live.raw" }\n' "$work" > "$work/asound.conf"
mosquitto_sub -p "$port" -t 'deepinfant/bench/#' -v -F '%U %t %p' > "$work/sub.log" & sub_pid=$!
sleep 0.3
total=$(cat "$work/total.txt")
ALSA_CONFIG_PATH="$work/asound.conf" /usr/bin/time -f '%U %S %M' -o "$work/time.txt" \
  "$bin" run --config "$work/config.toml" --broker "mqtt://127.0.0.1:$port" --node-id bench --audio-device live --real-time \
  --state-dir "$work/state" --duration "$total" --log-level error & time_pid=$!
# Steady state on silence: the agent's CPU ticks between 4 s and the end of the silence (start-up excluded).
if python3 -c "import sys; sys.exit(0 if $silence >= 10 else 1)"; then
  sleep 4; agent=$(pgrep -n -f -- "--node-id bench") || true
  if [ -n "$agent" ]; then
    t0=$(awk '{print $14+$15}' "/proc/$agent/stat"); sleep "$(python3 -c "print($silence - 5)")"
    t1=$(awk '{print $14+$15}' "/proc/$agent/stat")
    echo "$t0 $t1 $(getconf CLK_TCK) $(python3 -c "print($silence - 5)")" > "$work/steady.txt"
  fi
fi
wait "$time_pid"
sleep 0.5
python3 - "$work" "$silence" "$total" "$chunk" <<'PY'
import sys, json, math
from datetime import datetime
w, silence, total, chunk = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
user, sys_, maxrss = open(f"{w}/time.txt").read().split()
cpu = float(user) + float(sys_)
onsets = [int(x) for x in open(f"{w}/onsets.txt").read().split()]
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
lat, starts, base = [], [], None
for line in open(f"{w}/sub.log"):
    rx, topic, payload = line.split(" ", 2)
    if topic.endswith("/level") and base is None:
        # The first level report is stamped at the end of the chunk that completes 10 s of audio: it ties the
        # agent's stream clock (sample indices) to the wall clock, without counting start-up time.
        base = ts(json.loads(payload)["timestamp"]) - math.ceil(160000 / chunk) * chunk / 16000
    if topic.endswith("/event"):
        e = json.loads(payload)
        lat.append((float(rx) - ts(e["timestamp"])) * 1000)
        if e["type"] == "start":
            starts.append(float(rx))
lat.sort()
print(f"audio {total:.0f} s at 1x real time ({silence:.0f} s silence, 28 s continuous crying, 4 more cries of 7 s), chunks of {chunk} samples")
print(f"CPU {cpu:.2f} s = {100*cpu/total:.2f} % of one core on average (start-up included); peak RSS {int(maxrss)/1024:.1f} MB")
try:
    t0, t1, hz, secs = open(f"{w}/steady.txt").read().split()
    print(f"steady state on silence: {100 * (int(t1) - int(t0)) / int(hz) / float(secs):.2f} % of one core "
          f"({int(t1) - int(t0)} ticks of 1/{hz} s in {float(secs):.0f} s)")
except FileNotFoundError:
    pass
if lat:
    p = lambda q: lat[min(len(lat)-1, int(q*len(lat)))]
    print(f"events {len(lat)}: window end -> subscriber receipt p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1]:.1f} ms "
          "(window end = end of its audio, so this includes waiting for the chunk that completes it)")
if base is not None and starts:
    d = []
    for o in onsets:  # the first start event received after each cry began
        after = [s - (base + o / 16000) for s in starts if s > base + o / 16000]
        d.append(min(after) if after else float("nan"))
    print(f"cry onset -> start event received, {len(d)} onsets at different phases: " + ", ".join(f"{x:.2f}" for x in d)
          + f" s (mean {sum(d)/len(d):.2f}, max {max(d):.2f}); {len(starts)} start events for {len(onsets)} cries")
else:
    print("no start event or no level report")
PY
