#!/usr/bin/env bash
# Fleet scale on one machine: one loopback mosquitto and N agents (ALSA `null`, paced to real time, own
# state directories and node ids), driven by the fleet CLI as a fleet owner would. Measures:
#   - time until all N are `online` in `fleet list`;
#   - `fleet config --all` and a signed `fleet push-model --all`: acks, time from the command on the wire to
#     the last ack (and the CLI's whole run);
#   - a broker restart in the middle of a push-model to all: which model each node ends on (running, per
#     `info`, and stored, per its models/installed.json), half-updated nodes, the command's exit status;
#   - at idle: per-node CPU (% of one core), RSS and PSS; broker messages and bytes per node per minute;
#     retained messages and bytes per node.
# Usage: bash deploy/bench-fleet.sh [N] [IDLE_SECONDS]   (default 10 nodes, 60 s; BIN=path for another binary)
# Prints a table and writes the figures as JSON to $OUT (default /tmp/bench-fleet-N.json).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
idle=${2:-60}
out=${OUT:-/tmp/bench-fleet-$n.json}
if [ -z "${BIN:-}" ]; then swift build -c release --static-swift-stdlib --product deepinfant-edge >/dev/null; fi
bin="${BIN:-$(swift build -c release --static-swift-stdlib --show-bin-path)/deepinfant-edge}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "${wire_pid:-}" "${broker_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="mqtt://127.0.0.1:$port"
# As deploy/mosquitto/mosquitto.conf: persistence on (retained messages survive a restart). mosquitto
# started as root drops to its own user, which must reach and write the persistence folder.
mkdir -p "$work/broker" && chmod 711 "$work" && chmod 777 "$work/broker"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmessage_size_limit 0\nmax_connections -1\npersistence true\npersistence_location %s/\n' \
  "$port" "$work/broker" > "$work/m.conf"
start_broker() {
  /usr/sbin/mosquitto -c "$work/m.conf" >>"$work/broker.log" 2>&1 & broker_pid=$!
  for _ in $(seq 100); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return; sleep 0.05; done
}
start_broker
ulimit -n 65536 2>/dev/null || true

# Signing key and two newer versions of the shipped reason model (only the version in the metadata differs).
"$bin" model keygen --out "$work/keys" >/dev/null
python3 - "$work" <<'PY'
import json, struct, sys
w = sys.argv[1]
raw = open("Sources/Inference/Resources/deepinfant-reason.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
for version in ("1.0.1", "1.0.2"):
    h = json.loads(json.dumps(header))
    meta = json.loads(h["__metadata__"]["deepinfant"]); meta["version"] = version
    h["__metadata__"]["deepinfant"] = json.dumps(meta, separators=(",", ":"))
    text = json.dumps(h, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(f"{w}/reason-{version}.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY

fleet() { "$bin" fleet "$@" --broker "$url"; }
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }
online_count() { fleet list --settle "${1:-1}" 2>/dev/null | awk 'NR > 1 && $2 == "online"' | wc -l; }

# Every message on the wire with its arrival time (payload length only), for ack latencies.
mosquitto_sub -p "$port" -t 'deepinfant/+/result' -t 'deepinfant/all/cmd/#' -F '%U %t %l' > "$work/wire.log" 2>/dev/null & wire_pid=$!

echo "bench-fleet: starting $n agents (ALSA null, real time, 10 per 0.5 s)" >&2
t_launch=$(now)
for i in $(seq 1 "$n"); do
  mkdir -p "$work/n$i"
  "$bin" run --broker "$url" --node-id "node$i" --audio-device null --real-time --state-dir "$work/n$i" \
    --trusted-key "$work/keys/signing.pub" --log-level warning > "$work/n$i/agent.log" 2>&1 &
  pids+=($!)
  if [ $((i % 10)) -eq 0 ]; then sleep 0.5; fi
done
t_launched=$(now)
deadline=$(( $(date +%s) + 180 ))
while :; do
  c=$(online_count 1)
  [ "$c" -ge "$n" ] && break
  if [ "$(date +%s)" -gt "$deadline" ]; then echo "only $c of $n online after 180 s" >&2; break; fi
done
t_online=$(now)
online=$c

# A config change and a signed model to all, each timed from the command on the wire to the last ack.
run_timed() {  # name, then the fleet arguments; writes $work/<name>.{out,rc,t0,t1}
  local name=$1; shift
  now > "$work/$name.t0"
  set +e; fleet "$@" --timeout 60 > "$work/$name.out" 2>&1; echo $? > "$work/$name.rc"; set -e
  now > "$work/$name.t1"
}
run_timed config config --all '{"gate":{"hangover_s":5}}'
run_timed push1 push-model "$work/reason-1.0.1.safetensors" --key "$work/keys/signing.key" --all

# Idle: CPU ticks, RSS/PSS of every agent and the broker's traffic over $idle seconds.
sleep 2
python3 - "$work" "$idle" "$port" "${pids[@]}" <<'PY' > "$work/idle.json"
import json, os, subprocess, sys, time
w, idle, port, pids = sys.argv[1], float(sys.argv[2]), sys.argv[3], [int(p) for p in sys.argv[4:]]
tck = os.sysconf("SC_CLK_TCK")
def ticks(p):
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
def mem(p):
    rss = pss = 0
    for line in open(f"/proc/{p}/smaps_rollup"):
        if line.startswith("Rss:"): rss = int(line.split()[1])
        if line.startswith("Pss:"): pss = int(line.split()[1])
    return rss, pss
sub = subprocess.Popen(["mosquitto_sub", "-p", port, "-R", "-t", "deepinfant/#", "-t", "homeassistant/#", "-F", "%t %l"],
                       stdout=subprocess.PIPE, text=True)
t0 = {p: ticks(p) for p in pids}; start = time.time()
time.sleep(idle)
t1 = {p: ticks(p) for p in pids}; elapsed = time.time() - start
sub.terminate(); lines = sub.communicate()[0].splitlines()
cpu = sorted(100.0 * (t1[p] - t0[p]) / tck / elapsed for p in pids)
mems = [mem(p) for p in pids]
retained = subprocess.run(["mosquitto_sub", "-p", port, "--retained-only", "-t", "deepinfant/#", "-t", "homeassistant/#",
                           "-W", "3", "-F", "%t %l"], capture_output=True, text=True).stdout.splitlines()
def total(ls): return sum(int(l.rsplit(" ", 1)[1]) for l in ls if l.strip())
n = len(pids)
print(json.dumps({
    "idle_s": round(elapsed, 1),
    "cpu_pct_per_node": {"median": round(cpu[n // 2], 3), "max": round(cpu[-1], 3), "mean": round(sum(cpu) / n, 3)},
    "rss_mb_per_node": {"median": round(sorted(m[0] for m in mems)[n // 2] / 1024, 1), "max": round(max(m[0] for m in mems) / 1024, 1)},
    "pss_mb_per_node": {"median": round(sorted(m[1] for m in mems)[n // 2] / 1024, 1)},
    "messages_per_node_per_min": round(len(lines) / n / (elapsed / 60), 2),
    "bytes_per_node_per_min": round(total(lines) / n / (elapsed / 60)),
    "topics_at_idle": sorted({l.split(" ")[0].split("/")[-1] for l in lines if l.strip()}),
    "retained_per_node": round(len(retained) / n, 1),
    "retained_bytes_per_node": round(total(retained) / n),
}))
PY

# A broker restart in the middle of a push-model to all: the broker is stopped once a quarter of the
# nodes have acked (or after 1 s) and started again 1 s later.
marker=$(wc -l < "$work/wire.log")
now > "$work/push2.t0"
set +e
fleet push-model "$work/reason-1.0.2.safetensors" --key "$work/keys/signing.key" --all --timeout 90 > "$work/push2.out" 2>&1 &
push_pid=$!
set -e
t_wait=$(( $(date +%s%N) / 1000000 + 6000 ))
while :; do
  acks=$(tail -n +"$((marker + 1))" "$work/wire.log" | grep -c '/result ' || true)
  [ "$acks" -ge $(( (n + 3) / 4 )) ] && break
  [ $(( $(date +%s%N) / 1000000 )) -gt "$t_wait" ] && break
  sleep 0.02
done
acks_before_restart=$acks
kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
now > "$work/restart.t0"
sleep 1
start_broker
now > "$work/restart.t1"
set +e; wait "$push_pid"; echo $? > "$work/push2.rc"; set -e
now > "$work/push2.t1"
sleep 3
fleet list --settle 3 > "$work/list-after.txt" 2>&1 || true

python3 - "$work" "$n" "$online" "$t_launch" "$t_launched" "$t_online" "$acks_before_restart" > "$out" <<'PY'
import glob, json, os, re, sys
w, n, online = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t_launch, t_launched, t_online = map(float, sys.argv[4:7])
acks_before = int(sys.argv[7])
rd = lambda f: open(f"{w}/{f}").read().strip()
wire = []
for line in open(f"{w}/wire.log"):
    p = line.split()
    if len(p) >= 2: wire.append((float(p[0]) / 1e9 if float(p[0]) > 1e12 else float(p[0]), p[1]))
def outcome(name, command):
    t0, t1 = float(rd(f"{name}.t0")), float(rd(f"{name}.t1"))
    text = rd(f"{name}.out").splitlines()
    rows = [l.split() for l in text[1:] if l.strip()]
    ok = sum(1 for r in rows if len(r) > 1 and r[1] == "ok")
    sent = [t for t, topic in wire if t0 <= t <= t1 and topic.endswith(f"/all/cmd/{command}")]
    acks = [t for t, topic in wire if t0 <= t <= t1 and topic.endswith("/result")]
    first = sent[0] if sent else None
    return {"exit_status": int(rd(f"{name}.rc")), "acks_ok": ok, "rows": len(rows),
            "last_ack_after_command_s": round(max(acks) - first, 3) if first and acks else None,
            "cli_wall_s": round(t1 - t0, 3)}
res = {"nodes": n, "online": online, "launch_s": round(t_launched - t_launch, 2),
       "all_online_after_launch_s": round(t_online - t_launch, 2),
       "config_all": outcome("config", "config"), "push_model_all": outcome("push1", "model")}
res["idle"] = json.loads(rd("idle.json"))
# Restart during the push: running version (fleet list) and stored version (installed.json) per node.
running = {}
for line in rd("list-after.txt").splitlines()[1:]:
    m = re.match(r"(\S+)\s+(\S+)\s+\S+\s+deepinfant-crnn-reason (\S+);", line)
    if m: running[m.group(1)] = (m.group(2), m.group(3))
stored = {}
for i in range(1, n + 1):
    try: stored[f"node{i}"] = json.load(open(f"{w}/n{i}/models/installed.json"))["current"]["version"]
    except Exception: stored[f"node{i}"] = None
rows = [l.split() for l in rd("push2.out").splitlines()[1:] if l.strip()]
said = {r[0]: r[1] for r in rows if len(r) > 1}
new = old = half = 0; lying = []
for i in range(1, n + 1):
    node = f"node{i}"
    run_v = running.get(node, (None, None))[1]
    st = stored[node]
    if run_v == "1.0.2" and st == "1.0.2": new += 1
    elif run_v == "1.0.1" and st == "1.0.1": old += 1
    else: half += 1
    # The CLI's word for the node must match where it ended.
    if (said.get(node) == "ok") != (run_v == "1.0.2"): lying.append(node)
crashed = [os.path.basename(os.path.dirname(f)) for f in glob.glob(f"{w}/n*/agent.log") if "Fatal error" in open(f).read() or "Crash" in open(f).read()]
res["push_model_with_broker_restart"] = {
    "exit_status": int(rd("push2.rc")), "acks_before_restart": acks_before,
    "broker_down_s": round(float(rd("restart.t1")) - float(rd("restart.t0")) + 1, 2),
    "cli_wall_s": round(float(rd("push2.t1")) - float(rd("push2.t0")), 2),
    "nodes_on_new": new, "nodes_on_old": old, "half_updated_or_unknown": half,
    "cli_said_ok": sum(1 for v in said.values() if v == "ok"), "cli_word_differs_from_node": lying,
    "online_after": sum(1 for s, _ in running.values() if s == "online")}
res["agents_crashed"] = crashed
print(json.dumps(res, indent=1))
PY
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c, p, x, i = r["config_all"], r["push_model_all"], r["push_model_with_broker_restart"], r["idle"]
print(f"fleet of {r['nodes']} agents on one broker (ALSA null, real time)")
print(f"  online in fleet list      {r['online']}/{r['nodes']} after {r['all_online_after_launch_s']} s (launch took {r['launch_s']} s)")
print(f"  fleet config --all        {c['acks_ok']}/{r['nodes']} ok, last ack {c['last_ack_after_command_s']} s after the command (CLI {c['cli_wall_s']} s, exit {c['exit_status']})")
print(f"  fleet push-model --all    {p['acks_ok']}/{r['nodes']} ok, last ack {p['last_ack_after_command_s']} s after the command (CLI {p['cli_wall_s']} s, exit {p['exit_status']})")
print(f"  push-model + broker restart ({x['acks_before_restart']} acks before the stop): new {x['nodes_on_new']}, old {x['nodes_on_old']}, half/unknown {x['half_updated_or_unknown']}; CLI exit {x['exit_status']} in {x['cli_wall_s']} s, said ok for {x['cli_said_ok']}, wrong for {len(x['cli_word_differs_from_node'])}")
print(f"  idle per node             CPU {i['cpu_pct_per_node']['median']} % (max {i['cpu_pct_per_node']['max']}), RSS {i['rss_mb_per_node']['median']} MB, PSS {i['pss_mb_per_node']['median']} MB")
print(f"  broker traffic at idle    {i['messages_per_node_per_min']} msg and {i['bytes_per_node_per_min']} B per node per minute ({', '.join(i['topics_at_idle']) or 'none'}); retained {i['retained_per_node']} msg / {i['retained_bytes_per_node']} B per node")
print(f"  agents crashed            {len(r['agents_crashed'])}")
print(f"(JSON: {sys.argv[1]})")
PY
