#!/usr/bin/env bash
# A day of faults in an hour: one agent hears a looped recording (a cry every 30 s of audio) delivered at
# SPEED x real time through the ALSA `file` plugin reading a FIFO, while at random intervals
#   - the broker is stopped (SIGTERM; it keeps retained messages and sessions on disk) and started again,
#   - the agent is SIGKILLed and started again,
#   - the state disk (a small tmpfs) is filled up and freed,
#   - the audio device is removed (the FIFO disappears; an agent opening it finds no device) and restored.
# Afterwards it checks the events a persistent-session subscriber received: every episode well-formed
# (seq 0, 1, 2, ... without gaps, one start, at most one end), repeats only as exact (episode_id, seq)
# duplicates, nothing the agent stored in its outbox left behind; and the agent's RSS, open file
# descriptors and outbox size over time (slope per hour within each run of the agent).
# Usage: bash deploy/soak.sh [MINUTES] [SPEED]   (default 10 minutes at 24x; BIN=path, SEED=n, TMPFS_MB=24)
# Needs root for the tmpfs (without it the disk-full fault is skipped and the report says so).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
speed=${2:-24}
seed=${SEED:-1}
out=${OUT:-/tmp/soak-report.json}
if [ -z "${BIN:-}" ]; then swift build -c release --static-swift-stdlib --product deepinfant-edge >/dev/null; fi
bin="${BIN:-$(swift build -c release --static-swift-stdlib --show-bin-path)/deepinfant-edge}"
work=$(mktemp -d)
state="$work/state"
mkdir -p "$state"
tmpfs=0
if mount -t tmpfs -o size=${TMPFS_MB:-24}m tmpfs "$state" 2>/dev/null; then tmpfs=1; fi
cleanup() {
  kill "${agent_pid:-}" "${feeder_pid:-}" "${sub_pid:-}" "${broker_pid:-}" "${sampler_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ "$tmpfs" = 1 ] && umount "$state" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The broker persists its sessions, so the subscriber's queue survives a broker restart. mosquitto started
# as root drops to its own user, which must reach and write the folder (it could not, once: every broker
# fault then lost what the subscriber had not yet read, and the soak counted it against the node).
mkdir -p "$work/broker" && chmod 711 "$work" && chmod 777 "$work/broker"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmessage_size_limit 0\npersistence true\npersistence_location %s/\nautosave_interval 5\n' \
  "$port" "$work/broker" > "$work/m.conf"
start_broker() {
  /usr/sbin/mosquitto -c "$work/m.conf" >>"$work/broker.log" 2>&1 & broker_pid=$!
  for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return; sleep 0.05; done
}
start_broker

# One 30 s cycle of audio: the bundled cry (7 s) and 23 s of quiet noise at -60 dBFS.
"$bin" raw-audio --gap 0 --out "$work/cry.raw" samples/cry-hungry.flac >/dev/null
python3 - "$work" <<'PY'
import sys, numpy as np
w = sys.argv[1]
cry = np.fromfile(f"{w}/cry.raw", dtype="<i2")
rng = np.random.default_rng(0)
quiet = (rng.standard_normal(30 * 16000 - len(cry)) * 32768 * 10 ** (-60 / 20)).astype("<i2")
np.concatenate([cry, quiet]).tofile(f"{w}/cycle.raw")
PY
mkfifo "$work/mic.fifo"
printf 'pcm.soak { type file slave.pcm { type null } file "/dev/null" format "raw" infile "%s/mic.fifo" }\n' "$work" > "$work/asound.conf"

# The feeder: writes the cycle into the FIFO at $speed x real time, 1024-byte blocks (one 512-sample
# chunk), and counts the cries it delivered. While $work/removed exists the FIFO is gone and nothing is fed.
cat > "$work/feeder.py" <<'PY'
import errno, os, signal, sys, time
w, speed = sys.argv[1], float(sys.argv[2])
cycle = open(f"{w}/cycle.raw", "rb").read()
block = 1024 * 8          # 8 chunks (256 ms of audio) per write
period = (block / 2 / 16000) / speed
cry_end = 7 * 16000 * 2   # bytes of the cry at the start of the cycle
pos, cries, fed, log = 0, 0, 0, open(f"{w}/feeder.log", "a", buffering=1)
fifo = f"{w}/mic.fifo"
while True:
    while os.path.exists(f"{w}/removed"):
        time.sleep(0.05)
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    try:
        fd = os.open(fifo, os.O_WRONLY)          # blocks until an agent opens the device
    except OSError:
        time.sleep(0.05); continue
    t0 = time.monotonic(); sent = 0
    try:
        while not os.path.exists(f"{w}/removed"):
            chunk = cycle[pos:pos + block]
            os.write(fd, chunk)
            if pos < cry_end <= pos + len(chunk):
                cries += 1
                log.write(f"{time.time():.3f} cry {cries}\n")
            pos = (pos + len(chunk)) % len(cycle); sent += 1; fed += len(chunk)
            if sent % 64 == 0: open(f"{w}/fed.txt", "w").write(f"{fed} {cries}\n")
            due = t0 + sent * period
            d = due - time.monotonic()
            if d > 0: time.sleep(d)
            elif d < -1: t0, sent = time.monotonic(), 0   # the reader stalled: do not burst to catch up
    except OSError as e:
        log.write(f"{time.time():.3f} reader gone ({errno.errorcode.get(e.errno, e.errno)})\n")
    finally:
        try: os.close(fd)
        except OSError: pass
    open(f"{w}/fed.txt", "w").write(f"{fed} {cries}\n")
PY
python3 "$work/feeder.py" "$work" "$speed" & feeder_pid=$!

# The subscriber: a persistent session (clean session off, QoS 1), so events published while it is
# reconnecting after a broker restart are kept for it.
start_sub() {
  mosquitto_sub -p "$port" -i soak-subscriber -c -q 1 -t 'deepinfant/soak/event' -F '%U %p' >> "$work/events.log" 2>>"$work/sub.err" &
  sub_pid=$!
}
start_sub
sleep 0.3

printf '[audio]\ndevice = "soak"\n[node]\nid = "soak"\nstate_dir = "%s"\n[mqtt]\nbroker = "mqtt://127.0.0.1:%s"\n[log]\nlevel = "notice"\n' \
  "$state" "$port" > "$work/config.toml"
starts=0
# A crash prints its backtrace into agent.log (the static binary needs the toolchain's static backtracer).
backtracer=$(dirname "$(readlink -f "$(command -v swift)")")/../libexec/swift/linux/swift-backtrace-static
[ -x "$backtracer" ] && export SWIFT_BACKTRACE="enable=yes,interactive=no,swift-backtrace=$backtracer"
start_agent() {
  ALSA_CONFIG_PATH="$work/asound.conf" "$bin" run --config "$work/config.toml" >> "$work/agent.log" 2>&1 &
  agent_pid=$!; starts=$((starts + 1))
  echo "$(date +%s.%N) start $agent_pid" >> "$work/faults.log"
}
start_agent

# The sampler: every 5 s the agent's RSS, open descriptors, outbox rows, with the agent's pid.
cat > "$work/sampler.sh" <<'SH'
while :; do
  p=$(pgrep -n -f -- "--config $1/config.toml" || true)
  if [ -n "$p" ]; then
    rss=$(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0)
    fds=$(ls /proc/$p/fd 2>/dev/null | wc -l)
    rows=$(sqlite3 "file:$1/state/outbox.sqlite?mode=ro" 'select count(*) from outbox' 2>/dev/null || echo -1)
    echo "$(date +%s.%N) $p $rss $fds $rows" >> "$1/samples.log"
  fi
  sleep 5
done
SH
bash "$work/sampler.sh" "$work" & sampler_pid=$!

echo "soak: $minutes min at ${speed}x real time (seed $seed, tmpfs $tmpfs)" >&2
python3 - "$seed" "$minutes" "$tmpfs" > "$work/plan.txt" <<'PY'
import random, sys
rng = random.Random(int(sys.argv[1])); total = float(sys.argv[2]) * 60; tmpfs = sys.argv[3] == "1"
t = 20.0
# Restarts (kill, device) less often than the others, so that the agent's runs are long enough to show
# whether RSS and descriptors stay flat.
kinds = ["broker", "broker", "broker", "disk", "disk", "kill", "device"] if tmpfs else ["broker", "broker", "broker", "kill", "device"]
while t < total - 30:
    k = rng.choice(kinds)
    hold = {"broker": rng.uniform(1, 15), "kill": rng.uniform(0.2, 3), "disk": rng.uniform(5, 30), "device": rng.uniform(2, 15)}[k]
    print(f"{t:.1f} {k} {hold:.1f}")
    t += hold + rng.uniform(15, 60)
PY
t_start=$(date +%s.%N)
elapsed() { python3 -c "import time; print(time.time() - $t_start)"; }
while read -r at kind hold; do
  while python3 -c "import sys; sys.exit(0 if $(elapsed) < $at else 1)"; do sleep 0.5; done
  kill -0 "$sub_pid" 2>/dev/null || start_sub
  echo "$(date +%s.%N) $kind $hold" >> "$work/faults.log"
  case $kind in
    broker) kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; sleep "$hold"; start_broker ;;
    kill)   kill -KILL "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; sleep "$hold"; start_agent ;;
    disk)   dd if=/dev/zero of="$state/filler" bs=64k >/dev/null 2>&1 || true; sleep "$hold"; rm -f "$state/filler" ;;
    device) touch "$work/removed"; rm -f "$work/mic.fifo"
            # An agent that opens the device while it is gone (here: one restarted now) must keep retrying.
            kill -KILL "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; start_agent
            sleep "$hold"; rm -f "$work/removed" ;;
  esac
  if ! kill -0 "$agent_pid" 2>/dev/null; then echo "$(date +%s.%N) agent died by itself" >> "$work/faults.log"; start_agent; fi
done < "$work/plan.txt"
while python3 -c "import sys; sys.exit(0 if $(elapsed) < $minutes * 60 else 1)"; do sleep 1; done
# Let the outbox drain, then stop cleanly (SIGTERM) and collect.
sleep 5
kill -TERM "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true
sleep 2
kill "$sub_pid" 2>/dev/null || true; kill "$sampler_pid" 2>/dev/null || true
kill "$feeder_pid" 2>/dev/null || true
left=$(sqlite3 "file:$state/outbox.sqlite?mode=ro" 'select count(*) from outbox' 2>/dev/null || echo -1)

python3 - "$work" "$minutes" "$speed" "$starts" "$left" "$tmpfs" "$seed" > "$out" <<'PY'
import collections, json, sys
w, minutes, speed, starts, left, tmpfs, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1", int(sys.argv[7])
events, bad_lines = [], 0
for line in open(f"{w}/events.log"):
    try:
        t, payload = line.split(" ", 1); events.append(json.loads(payload))
    except Exception: bad_lines += 1
by = collections.defaultdict(dict); exact_dups = conflicting = 0
for e in events:
    k = (e["episode_id"], e["seq"])
    if e["seq"] in by[e["episode_id"]]:
        if by[e["episode_id"]][e["seq"]] == e: exact_dups += 1
        else: conflicting += 1
    else: by[e["episode_id"]][e["seq"]] = e
gaps = no_start = multi_end = open_eps = 0
problems = []
for ep, seqs in by.items():
    s = sorted(seqs)
    bad = []
    if s != list(range(len(s))): gaps += 1; bad.append("gap")
    if seqs.get(0, {}).get("type") != "start": no_start += 1; bad.append("no start")
    ends = [q for q in s if seqs[q]["type"] == "end"]
    if len(ends) > 1 or (ends and ends[0] != s[-1]): multi_end += 1; bad.append("bad end")
    if not ends: open_eps += 1; bad.append("no end")
    if bad: problems.append({"episode_id": ep, "problems": bad, "events": [f"{q}:{seqs[q]['type']}@{seqs[q]['timestamp']}" for q in s]})
faults = collections.Counter(l.split()[1] for l in open(f"{w}/faults.log") if len(l.split()) > 1)
died = sum(1 for l in open(f"{w}/faults.log") if "died by itself" in l)
# RSS / fds / outbox: slope per hour within each run of the agent (samples 30 s after its start on).
runs = collections.defaultdict(list)
for l in open(f"{w}/samples.log"):
    t, p, rss, fds, rows = l.split(); runs[p].append((float(t), int(rss), int(fds), int(rows)))
def slope(pts):
    n = len(pts)
    if n < 4: return None
    mx = sum(x for x, _ in pts) / n; my = sum(y for _, y in pts) / n
    d = sum((x - mx) ** 2 for x, _ in pts)
    return None if d == 0 else sum((x - mx) * (y - my) for x, y in pts) / d * 3600
rss_s, fd_s, longest = [], [], 0.0
for p, pts in runs.items():
    t0 = pts[0][0]; pts = [q for q in pts if q[0] - t0 >= 30]
    if len(pts) < 4: continue
    span = pts[-1][0] - pts[0][0]
    if span < 120: continue
    longest = max(longest, span)
    rss_s.append((span, slope([(q[0], q[1] / 1024) for q in pts]))); fd_s.append((span, slope([(q[0], q[2]) for q in pts])))
allpts = [q for pts in runs.values() for q in pts]
fed = open(f"{w}/fed.txt").read().split() if __import__("os").path.exists(f"{w}/fed.txt") else ["0", "0"]
audio_fed_s = int(fed[0]) / 32000
interrupted = sum(1 for e in events if e.get("interrupted"))
cries_fed = max([int(l.split()[2]) for l in open(f"{w}/feeder.log") if " cry " in l] or [0])
wa = lambda xs: round(sum(s * v for s, v in xs if v is not None) / max(1e-9, sum(s for s, v in xs if v is not None)), 3) if xs else None
report = {
    "minutes": minutes, "speed": speed, "seed": seed, "tmpfs": tmpfs, "agent_starts": starts, "agent_died_by_itself": died,
    "faults": dict(faults), "cries_fed": cries_fed,
    "audio_fed_h": round(audio_fed_s / 3600, 2), "effective_speed": round(audio_fed_s / (minutes * 60), 1),
    "interrupted_ends": interrupted,
    "events": len(events), "episodes": len(by), "unparsable_lines": bad_lines,
    "exact_duplicates": exact_dups, "conflicting_duplicates": conflicting,
    "episodes_with_seq_gaps": gaps, "episodes_without_start": no_start, "episodes_with_bad_end": multi_end,
    "episodes_without_end": open_eps, "outbox_rows_left": left,
    "outbox_rows_max": max([q[3] for q in allpts] or [0]),
    "rss_mb_max": round(max([q[1] for q in allpts] or [0]) / 1024, 1),
    "fds_max": max([q[2] for q in allpts] or [0]),
    "rss_mb_per_hour_slope": wa(rss_s), "fds_per_hour_slope": wa(fd_s),
    "longest_run_s": round(longest, 0), "runs_measured": len(rss_s),
    "problem_episodes": problems[:20],
    "crash_lines": sum(1 for l in open(f"{w}/agent.log") if "Fatal error" in l or "Program crashed" in l or "Segmentation" in l),
    # Non-zero: the broker lost the subscriber's queue on restarts, so losses above may be the harness's.
    "broker_save_errors": sum(1 for l in open(f"{w}/broker.log") if "Error saving" in l),
}
print(json.dumps(report, indent=1))
PY
cat "$out"
tail -5 "$work/agent.log" >&2 || true
