"""Per-window CRNN latency: Swift engine vs PyTorch vs ONNX Runtime, same weights, same input, one run.

    pip install -r training/requirements.txt      # numpy, torch (CPU), safetensors, onnx, onnxruntime
    python3 training/bench_model.py [--model FILE] [--binary PATH] [--iterations 300] [--json]

Without --binary it uses the release binary of this checkout (`.build/release`, else `.build-infer/release`)
and builds it first (`swift build -c release --product deepinfant-edge`) when there is none.

Loads the model file (docs/model-format.md) into `crnn.CRNN`, builds the same input as
`deepinfant-edge bench model` (the file's `selftest.input`, frame t taken from t % its length, normalised
with the file's norm_mean/norm_std, one 94 x 64 window for the standard model), then times, each on one
thread:
* PyTorch eager (`torch.set_num_threads(1)`, inference mode),
* ONNX Runtime (the model exported with `torch.onnx.export`, intra/inter-op threads 1, sequential),
* the Swift engine, by running `<binary> bench model --json` (p50/p99 measured inside that process).
The engines run in `--rounds` interleaved rounds (a burst of load on a shared machine then hits all
three); each reports the median over rounds of its p50/p99 and its minimum. Prints those, the ratios
to ONNX Runtime, and the max |Δp| between the three outputs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _require_packages() -> None:
    """A clear line instead of a traceback when a package is missing."""
    import importlib.util
    needed = {"numpy": "numpy", "torch": "torch==2.13.0+cpu", "safetensors": "safetensors", "onnx": "onnx",
              "onnxruntime": "onnxruntime"}
    missing = [pip for mod, pip in needed.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise SystemExit(f"bench_model.py needs Python packages that are not installed: {', '.join(missing)}\n"
                         f"  pip install -r {Path(__file__).resolve().parent / 'requirements.txt'}   (or: pip install {' '.join(missing)})")


_require_packages()

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crnn import CRNN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "Sources/Inference/Resources/deepinfant-reason.safetensors"
BINARY_CANDIDATES = [ROOT / ".build/release/deepinfant-edge", ROOT / ".build-infer/release/deepinfant-edge"]


def find_or_build_binary() -> Path:
    """The checkout's release binary; built (a few minutes the first time) when there is none."""
    for b in BINARY_CANDIDATES:
        if b.is_file() and os.access(b, os.X_OK):
            return b
    print("bench_model.py: no release binary yet, building it: swift build -c release --product deepinfant-edge",
          file=sys.stderr)
    try:
        subprocess.run(["swift", "build", "-c", "release", "--product", "deepinfant-edge"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"bench_model.py: cannot build the release binary ({e}); run `bash deploy/install-deps.sh` "
                         "and `swift build -c release`, or pass --binary PATH")
    return Path(path) / "deepinfant-edge"


def load_model(path: Path) -> tuple[CRNN, dict, np.ndarray]:
    """The model file as a PyTorch CRNN in eval mode, its metadata, and `selftest.input`."""
    from safetensors import safe_open
    with safe_open(str(path), "np") as f:
        meta = json.loads(f.metadata()["deepinfant"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    a = meta["architecture"]
    model = CRNN(a["n_mels"], a["n_classes"], conv_channels=a["conv_channels"], lstm_hidden=a["lstm_hidden"],
                 dense=a["dense"], pooling=a["pooling"])
    for i, b in enumerate(model.blocks):  # the format allows an optional conv bias
        if f"blocks.{i}.conv.bias" in tensors:
            c = b.conv
            b.conv = torch.nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1, bias=True)
    selftest = tensors.pop(meta["selftest"]["input_tensor"])
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()
    return model, meta, selftest


def bench_input(meta: dict, selftest: np.ndarray, frames: int) -> np.ndarray:
    """Same as BenchModelCommand.benchInput, normalised and laid out [1, 1, n_mels, frames]."""
    x = selftest[np.arange(frames) % selftest.shape[0]]
    f = meta["features"]
    x = (x - np.float32(f["norm_mean"])) / np.float32(f["norm_std"])
    return np.ascontiguousarray(x.T[None, None].astype(np.float32))


def timed(fn, iterations: int, warmup: int) -> tuple[list[float], np.ndarray]:
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        out = fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times, out


def pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    e = np.exp(z - z.max())
    return e / e.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--binary", type=Path, default=None,
                    help="release deepinfant-edge binary (default: this checkout's, built when missing)")
    ap.add_argument("--frames", type=int, default=None, help="window frames (default: the model's window)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three engines")
    ap.add_argument("--backend", default="openblas", help="Swift matrix-product backend (openblas or swift)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()

    if a.binary is None:
        a.binary = find_or_build_binary()
    elif not a.binary.is_file():
        raise SystemExit(f"bench_model.py: --binary {a.binary} does not exist")
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    model, meta, selftest = load_model(a.model)
    frames = a.frames or meta["window"]["frames"]
    x = bench_input(meta, selftest, frames)
    xt = torch.from_numpy(x)
    results: dict[str, dict] = {}

    import onnxruntime as ort
    tmp = tempfile.TemporaryDirectory()
    onnx_path = os.path.join(tmp.name, "crnn.onnx")
    with torch.no_grad():
        torch.onnx.export(model, (xt,), onnx_path, input_names=["x"], output_names=["logits"],
                          opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    cmd = [str(a.binary), "bench", "model", "--json", "--model", str(a.model), "--frames", str(frames),
           "--iterations", str(a.iterations), "--warmup", str(a.warmup), "--backend", a.backend]

    # Rounds interleave the three engines so a burst of load on this shared machine hits all of them;
    # each engine reports the median over rounds of its per-round p50/p99, and its overall minimum.
    rounds: dict[str, list[dict]] = {"swift": [], "pytorch": [], "onnxruntime": []}
    swift = None
    for _ in range(a.rounds):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        swift = json.loads(proc.stdout.strip().splitlines()[-1])
        rounds["swift"].append(dict(p50_ms=swift["p50_ms"], p99_ms=swift["p99_ms"], min_ms=swift["min_ms"]))
        with torch.inference_mode():
            times, out = timed(lambda: model(xt), a.iterations, a.warmup)
        p_torch = softmax(out.numpy())
        rounds["pytorch"].append(dict(p50_ms=pct(times, 0.5), p99_ms=pct(times, 0.99), min_ms=min(times)))
        times, out = timed(lambda: sess.run(None, {"x": x})[0], a.iterations, a.warmup)
        p_ort = softmax(out)
        rounds["onnxruntime"].append(dict(p50_ms=pct(times, 0.5), p99_ms=pct(times, 0.99), min_ms=min(times)))
    tmp.cleanup()
    p_swift = np.asarray(swift["probabilities"], dtype=np.float64)
    for name, rs in rounds.items():
        results[name] = dict(p50_ms=statistics.median(r["p50_ms"] for r in rs),
                             p99_ms=statistics.median(r["p99_ms"] for r in rs),
                             min_ms=min(r["min_ms"] for r in rs), rounds=rs)
    results["pytorch"]["version"] = torch.__version__
    results["onnxruntime"]["version"] = ort.__version__
    results["swift"].update(backend=swift["backend"], allocations_per_inference=swift["allocations_per_inference"],
                            peak_rss_mb=swift["peak_rss_mb"])

    ort_p50 = results["onnxruntime"]["p50_ms"]
    for r in results.values():
        r["ratio_to_onnxruntime_p50"] = r["p50_ms"] / ort_p50
    summary = dict(model=str(a.model), model_version=meta["version"], frames=frames, n_mels=meta["architecture"]["n_mels"],
                   parameters=swift["parameters"], threads=1, iterations=a.iterations, engines=results,
                   max_abs_dp=dict(swift_vs_pytorch=float(np.abs(p_swift - p_torch).max()),
                                   onnxruntime_vs_pytorch=float(np.abs(p_ort - p_torch).max()),
                                   swift_vs_onnxruntime=float(np.abs(p_swift - p_ort).max())))
    if a.json:
        print(json.dumps(summary, sort_keys=True))
        return
    print(f"model {meta['name']} {meta['version']} ({swift['parameters']} parameters), window {frames} x "
          f"{meta['architecture']['n_mels']}, 1 thread, {a.rounds} rounds x {a.iterations} iterations "
          f"(p50/p99: median over rounds)")
    print(f"{'engine':<16}{'p50 ms':>9}{'p99 ms':>9}{'min ms':>9}{'p50 / ORT':>11}")
    for name, r in (("swift", results["swift"]), ("pytorch", results["pytorch"]), ("onnxruntime", results["onnxruntime"])):
        label = f"swift/{r['backend']}" if name == "swift" else name
        print(f"{label:<16}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['min_ms']:>9.3f}{r['ratio_to_onnxruntime_p50']:>10.2f}x")
    print(f"swift: {swift['allocations_per_inference']} allocations per inference, peak RSS {swift['peak_rss_mb']:.1f} MB")
    d = summary["max_abs_dp"]
    print(f"max |dp|: swift vs pytorch {d['swift_vs_pytorch']:.2e}, ort vs pytorch {d['onnxruntime_vs_pytorch']:.2e}")


if __name__ == "__main__":
    main()
