#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every parser that takes outside input: model files, signed model
# envelopes (cmd/model), config.toml, cmd/config merge patches, .npy files, audio file headers.
# Usage: bash deploy/fuzz.sh [SECONDS per harness, default 60] [HARNESS...]
# Builds the harnesses (Fuzz/, DEEPINFANT_FUZZ=1) into .build-fuzz/, seeds each corpus from the real files
# and payloads of the repository, runs each harness with a 1 s per-input timeout and a 2 GiB memory limit,
# and prints executions, coverage and findings per harness. Crashes, hangs and OOMs land in
# .build-fuzz/findings/<harness>/; exit 1 if any harness found one.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
all=(FuzzModelFile FuzzModelEnvelope FuzzConfigTOML FuzzConfigPatch FuzzNPY FuzzAudioFile)
harnesses=("${@:-${all[@]}}")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
bash deploy/install-deps.sh >/dev/null
echo "== building the harnesses (release; every module instrumented for coverage) into .build-fuzz/"
# -sanitize=fuzzer on every Swift module and -fsanitize=fuzzer-no-link on the C/C++ ones (libsndfile is Debian's,
# not instrumented; TOMLKit's toml++ is), one product at a time: libFuzzer supplies each harness's driver.
: > .build-fuzz.log
for h in "${harnesses[@]}"; do
    DEEPINFANT_FUZZ=1 swift build -c release --build-path .build-fuzz -Xswiftc -sanitize=fuzzer \
        -Xcc -fsanitize=fuzzer-no-link -Xcxx -fsanitize=fuzzer-no-link --product "$h" >> .build-fuzz.log 2>&1 \
        || { cat .build-fuzz.log; exit 1; }
done
bin=.build-fuzz/release
work=.build-fuzz/fuzz
mkdir -p "$work"

# Seed corpora from the real files and payloads.
seed() { mkdir -p "$work/corpus/$1"; }
seed FuzzModelFile; cp Tests/InferenceTests/Fixtures/tiny*.safetensors Sources/Inference/Resources/deepinfant-cry-head.safetensors "$work/corpus/FuzzModelFile/"
seed FuzzModelEnvelope; cp Fuzz/Seeds/FuzzModelEnvelope/* "$work/corpus/FuzzModelEnvelope/"   # signed by `model sign`
seed FuzzConfigTOML; cp config.example.toml Tests/AgentTests/Fixtures/fuzz-regressions/*.toml "$work/corpus/FuzzConfigTOML/"
printf '[mqtt]\nbroker = "mqtt://127.0.0.1:1883"\n[gate]\ncry_threshold = 0.9\n[feedback]\nveto = true\n' > "$work/corpus/FuzzConfigTOML/small.toml"
seed FuzzConfigPatch
printf '{"gate":{"cry_threshold":0.8,"min_cry_patches":3}}' > "$work/corpus/FuzzConfigPatch/gate.json"
printf '{"gate":{"cry_threshold":null},"log":{"level":"debug"},"request_id":"r1"}' > "$work/corpus/FuzzConfigPatch/null.json"
printf '{"feedback":{"veto_similarity":0.7,"keep_audio":true},"mqtt":{"diagnostics_interval_s":30}}' > "$work/corpus/FuzzConfigPatch/feedback.json"
seed FuzzNPY; cp Tests/FeaturesTests/Fixtures/short_1000*.npy Tests/FeaturesTests/Fixtures/silence.npy "$work/corpus/FuzzNPY/"
seed FuzzAudioFile
cp Tests/CaptureTests/Fixtures/fuzz-regressions/* "$work/corpus/FuzzAudioFile/"
for f in Tests/GateTests/Fixtures/*.flac; do head -c 8192 "$f" > "$work/corpus/FuzzAudioFile/$(basename "$f")"; done
python3 - "$work/corpus/FuzzAudioFile" <<'PY' 2>/dev/null || true
import struct, sys, math
d = sys.argv[1]
for rate, ch, bits in [(16000, 1, 16), (44100, 2, 16), (8000, 1, 8), (48000, 1, 32)]:
    n = 400
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) * ch for i in range(n)) if bits == 16 else bytes(n * ch * bits // 8)
    hdr = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, ch, rate, rate * ch * bits // 8, ch * bits // 8, bits)
    open(f"{d}/t{rate}_{ch}_{bits}.wav", "wb").write(hdr + b"data" + struct.pack("<I", len(frames)) + frames)
PY

export SWIFT_BACKTRACE=enable=no   # libFuzzer, not the Swift backtracer, must see a crash to save its input
status=0
printf '%-18s %12s %10s %8s %8s  %s\n' HARNESS EXECUTIONS EXEC/S COVER FEATURES FINDINGS
for h in "${harnesses[@]}"; do
    out="$work/findings/$h"; mkdir -p "$out"
    log="$work/$h.log"
    "$bin/$h" "$work/corpus/$h" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$out/" -print_final_stats=1 > "$log" 2>&1 || true
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
    found=$(find "$out" -type f | wc -l)
    printf '%-18s %12s %10s %8s %8s  %s\n' "$h" "$execs" "$rate" "$cov" "$ft" "$found"
    if [ "$found" -gt 0 ]; then status=1; ls "$out"; grep -m3 -E 'ERROR|Fatal|timeout|out-of-memory' "$log" || true; fi
done
exit $status
