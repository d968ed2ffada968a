"""YAMNet patch latency: the Swift engine vs Google's TFLite file in ai-edge-litert, same waveform, one run.

    swift build -c release
    python3 training/bench_yamnet.py [--binary .build/release/deepinfant-edge] [--rounds 5] [--iterations 200] [--json]

Needs `pip install ai-edge-litert numpy safetensors` (training/requirements.txt). The input is the converted
model file's `selftest.input` (one 0.975 s patch of a real cry), which `deepinfant-edge bench model --yamnet`
also uses. Times, each on one thread, interleaved over `--rounds` rounds (a burst of load on a shared
machine then hits all three):
* the Swift engine (float32 weights dequantised from the int8 file, OpenBLAS), front end included;
* ai-edge-litert with its default XNNPACK delegate (int8 kernels), front end included (it is in the graph);
* ai-edge-litert with the builtin reference kernels and no delegate.
Reports the median over rounds of each p50/p99 and the minimum, and the ratios to XNNPACK.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TFLITE = ROOT.parent / "shared/models/yamnet/yamnet.tflite"
MODEL = ROOT / "Sources/Inference/Resources/yamnet.safetensors"


def need(module: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"bench_yamnet.py needs the Python package {module!r}: pip install -r training/requirements.txt")


def swift_round(binary: Path, iterations: int) -> dict:
    out = subprocess.run([str(binary), "bench", "model", "--yamnet", "--json", "--iterations", str(iterations)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def tflite_round(interp, x: np.ndarray, iterations: int) -> dict:
    i = interp.get_input_details()[0]["index"]
    for _ in range(20):
        interp.set_tensor(i, x)
        interp.invoke()
    t = []
    for _ in range(iterations):
        s = time.perf_counter()
        interp.set_tensor(i, x)
        interp.invoke()
        t.append((time.perf_counter() - s) * 1e3)
    t.sort()
    return {"p50_ms": t[len(t) // 2], "p99_ms": t[min(len(t) - 1, int(0.99 * len(t)))], "min_ms": t[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", type=Path, default=ROOT / ".build/release/deepinfant-edge")
    ap.add_argument("--tflite", type=Path, default=TFLITE)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.binary.exists():
        print(f"building the release binary ({a.binary} is missing) ...", file=sys.stderr)
        subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
    litert = need("ai_edge_litert.interpreter")
    st = need("safetensors.numpy")
    x = st.load_file(str(MODEL))["selftest.input"].astype(np.float32)
    xnn = litert.Interpreter(model_path=str(a.tflite), num_threads=1)
    ref = litert.Interpreter(model_path=str(a.tflite), num_threads=1,
                             experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    for it in (xnn, ref):
        it.allocate_tensors()
    rows = {"swift": [], "litert_xnnpack": [], "litert_builtin": []}
    for _ in range(a.rounds):
        rows["swift"].append(swift_round(a.binary, a.iterations))
        rows["litert_xnnpack"].append(tflite_round(xnn, x, a.iterations))
        rows["litert_builtin"].append(tflite_round(ref, x, max(20, a.iterations // 4)))
    summary = {k: {"p50_ms": statistics.median(r["p50_ms"] for r in v), "p99_ms": statistics.median(r["p99_ms"] for r in v),
                   "min_ms": min(r["min_ms"] for r in v)} for k, v in rows.items()}
    base = summary["litert_xnnpack"]
    for k, v in summary.items():
        v["p50_vs_xnnpack"] = v["p50_ms"] / base["p50_ms"]
        v["min_vs_xnnpack"] = v["min_ms"] / base["min_ms"]
    summary["swift"]["peak_rss_mb"] = rows["swift"][-1]["peak_rss_mb"]
    summary["swift"]["peak_rss_before_load_mb"] = rows["swift"][-1]["peak_rss_before_load_mb"]
    if a.json:
        print(json.dumps({"rounds": a.rounds, "iterations": a.iterations, "engines": summary}, indent=1, sort_keys=True))
        return
    print(f"YAMNet, one 0.975 s patch (front end + body + classifier), 1 thread, median of {a.rounds} rounds")
    print(f"{'engine':18} {'p50 ms':>8} {'p99 ms':>8} {'min ms':>8} {'p50 / XNNPACK':>14} {'min / XNNPACK':>14}")
    for k, v in summary.items():
        print(f"{k:18} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f} {v['min_ms']:8.2f} {v['p50_vs_xnnpack']:14.2f} {v['min_vs_xnnpack']:14.2f}")
    print(f"Swift peak RSS {summary['swift']['peak_rss_mb']:.1f} MB ({summary['swift']['peak_rss_before_load_mb']:.1f} MB before loading the model)")


if __name__ == "__main__":
    main()
