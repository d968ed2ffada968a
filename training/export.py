"""Export a DeepInfant model file (.safetensors) to ONNX and Core ML, checked on every export.

    python3 training/export.py MODEL_FILE --onnx OUT.onnx --coreml OUT.mlpackage [--binary deepinfant-edge]

Models: the reason CRNN and the CRNN cry detector (`architecture.type: "crnn"`, docs/model-format.md) and the
cry head on YAMNet embeddings (`"embedding_head"`, docs/model-format-yamnet.md). The YAMNet body itself is not
exported: it is Google's model, whose original `yamnet.tflite` (../shared/models/yamnet/, Apache-2.0) already
runs on phones; the node's float port of it is defined by `training/yamnet_reference.py`.

What the exported graphs take and give (names as below in both formats):

* CRNN: input `logmel` float32 `[1, 1, n_mels, frames]`, the window of log-mel dB the node feeds its engine,
  already **normalised** `(logmel_db - norm_mean) / norm_std` and transposed (mel bands first, time last);
  `frames` is `window.frames` (94) for a full window and any 8...10000 for a short recording. Output
  `probabilities` float32 `[1, n_classes]` (softmax; temperature calibration is folded into the weights).
* Cry head: input `embedding` float32 `[batch, 1024]`, the YAMNet embedding of one 0.975 s patch, as the body
  gives it (the head's standardisation is inside the graph). Output `probabilities` `[batch, 2]`
  (`not_cry`, `cry`).

ONNX: opset 17 (torch's TorchScript exporter). Core ML: ML program, iOS 15 deployment target, float32
compute precision (coremltools from the same PyTorch module). Both carry the model file's metadata: `name`,
`version`, `task`, `kind`, `labels` (JSON list, output order), `features`, `window`, `aggregation`,
`calibration`, `gate`, `normalisation`, `source_file`, `source_sha256` (of the .safetensors bytes),
`source_bytes`, `selftest`, `exporter`, `deepinfant` (the whole metadata document) — ONNX `metadata_props`,
Core ML user-defined metadata (strings; JSON where structured).

Checks on every export (the script exits 1 when one fails):
1. Self-test: the model file's `selftest.input` through the ONNX graph (ONNX Runtime) must give
   `selftest.expected` within `selftest.tolerance` (max |Δp|); the PyTorch module is checked the same way.
2. Parity with the Swift engine (needs the built binary, `--binary` or `.build/release/deepinfant-edge`;
   `--no-parity` skips it, saying so): real recordings of ../shared/data.
   CRNN: `deepinfant-edge features` gives the exact log-mel of each recording; ONNX runs every analysis
   window (`RecordingClassifier`'s windows); the Swift engine's probabilities for each of those windows come
   from `deepinfant-edge model inspect --json` on a copy of the model file whose `selftest.input` is that
   window (the engine's full-precision output), and the recording's aggregated answer from
   `deepinfant-edge classify --model FILE --json` (printed with 6 significant digits).
   Head: `deepinfant-edge tag --embeddings DIR` gives the node's embeddings of every patch; ONNX runs them
   and the Swift head's output per patch comes from `model inspect --json` on a copy whose `selftest.input`
   is that embedding. Pass: max |Δp| <= 1e-4 everywhere.
3. Core ML (when coremltools imports; otherwise the part is skipped with a message): the converted spec's
   specification version (iOS 15 = 6), model type ML program, op set `CoreML5`, input/output names,
   shapes and types (float32 only: no float16 tensor anywhere in the program), and the metadata values.
   Core ML cannot run on Linux, so its numbers are not compared here.

`--summary FILE` writes all figures as JSON (`training/export_report.py` collects them into
`training/report/EXPORTS.md`).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

OPSET = 17
COREML_TARGET = "iOS15"
COREML_SPEC_VERSION = 6          # iOS 15 / macOS 12 ML programs
COREML_OPSET = "CoreML5"         # the MIL op set of iOS 15
PARITY_TOLERANCE = 1e-4
MAX_FRAMES = 10_000              # the engine's limit for one window
DEFAULT_DATA = ROOT.parent / "shared" / "data"
METADATA_KEY = "deepinfant"


class ExportCheckFailed(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- model files

def read_model_file(path: str | Path) -> dict[str, Any]:
    """Tensors, metadata document, kind and sha256 of a DeepInfant .safetensors file."""
    path = Path(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    base = 8 + n
    tensors: dict[str, np.ndarray] = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        dt = {"F32": "<f4", "I8": "i1"}[e["dtype"]]
        tensors[name] = np.frombuffer(raw[base + a:base + b], dtype=dt).reshape(e["shape"]).copy()
    kind = meta["architecture"]["type"]
    return dict(path=path, meta=meta, tensors=tensors, kind=kind, sha256=hashlib.sha256(raw).hexdigest(),
                bytes=len(raw))


def write_model_file(path: Path, tensors: dict[str, np.ndarray], meta: dict) -> None:
    from export_model import _write_safetensors
    _write_safetensors(Path(path), tensors, {METADATA_KEY: json.dumps(meta, separators=(",", ":"))})


# ------------------------------------------------------------------------------------------ torch modules

def build_module(mf: dict):
    """The PyTorch module the exports are traced from: file tensors in, probabilities out."""
    import torch
    from torch import nn
    from crnn import CRNN

    t = {k: torch.from_numpy(v.astype(np.float32)) for k, v in mf["tensors"].items() if k != "selftest.input"}
    a = mf["meta"]["architecture"]
    if mf["kind"] == "crnn":
        m = CRNN(a["n_mels"], a["n_classes"], a["conv_channels"], a["lstm_hidden"], a["dense"], pooling=a["pooling"])
        for i, b in enumerate(m.blocks):   # conv.bias is optional in the format; crnn.py builds convs without
            if f"blocks.{i}.conv.bias" in t:
                old = b.conv
                b.conv = nn.Conv2d(old.in_channels, old.out_channels, 3, padding=1, bias=True)
        missing, unexpected = m.load_state_dict(t, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"tensors do not match the architecture: missing {missing}, unexpected {unexpected}")

        class CRNNExport(nn.Module):
            """crnn.CRNN's forward with softmax, written without shape arithmetic so both exporters see a
            clean graph (the time-major sequence is `permute + flatten`, index c * F + f as in the engine)."""
            def __init__(self, crnn):
                super().__init__()
                self.crnn = crnn

            def forward(self, logmel):
                c = self.crnn
                x = logmel
                for b in c.blocks:
                    x = b.pool(torch.relu(b.bn(b.conv(x))))
                x = x.permute(0, 3, 1, 2).flatten(2)          # [B, T, C*F]
                y, _ = c.lstm(x)
                h = y[:, -1] if c.pooling == "last" else y.mean(dim=1)
                for d in c.dense:
                    h = torch.relu(d(h))
                return torch.softmax(c.out(h), dim=-1)
        return CRNNExport(m).eval()

    if mf["kind"] == "embedding_head":
        class HeadExport(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("mean", t["norm.mean"])
                self.register_buffer("scale", t["norm.scale"])
                dims = [a["input_dim"], *a["hidden"]]
                self.dense = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:]))
                for j, d in enumerate(self.dense):
                    d.weight.data.copy_(t[f"dense.{j}.weight"])
                    d.bias.data.copy_(t[f"dense.{j}.bias"])
                self.out = nn.Linear(dims[-1], a["n_classes"])
                self.out.weight.data.copy_(t["out.weight"])
                self.out.bias.data.copy_(t["out.bias"])

            def forward(self, embedding):
                x = (embedding - self.mean) * self.scale
                for d in self.dense:
                    x = torch.relu(d(x))
                return torch.softmax(self.out(x), dim=-1)
        used = {"norm.mean", "norm.scale", "out.weight", "out.bias"} | {
            f"dense.{j}.{w}" for j in range(len(a["hidden"])) for w in ("weight", "bias")}
        extra = set(t) - used
        if extra:
            raise ValueError(f"unexpected tensors {sorted(extra)}")
        return HeadExport().eval()
    raise ValueError(f"cannot export architecture {mf['kind']!r} (only crnn and embedding_head; the YAMNet body "
                     "is Google's model: use its original yamnet.tflite)")


def normalise(mf: dict, logmel_db: np.ndarray) -> np.ndarray:
    """Raw log-mel dB `[frames, n_mels]` -> the CRNN input `[1, 1, n_mels, frames]`, as the engine computes it
    (`(v - norm_mean) * (1 / norm_std)` in float32)."""
    f = mf["meta"]["features"]
    x = (np.asarray(logmel_db, np.float32) - np.float32(f["norm_mean"])) * np.float32(1.0 / f["norm_std"])
    return np.ascontiguousarray(x.T[None, None], dtype=np.float32)


def model_input(mf: dict, selftest: np.ndarray) -> np.ndarray:
    if mf["kind"] == "crnn":
        return normalise(mf, selftest)
    return np.asarray(selftest, np.float32).reshape(1, -1)


# ---------------------------------------------------------------------------------------------- metadata

def export_metadata(mf: dict) -> dict[str, str]:
    m = mf["meta"]
    kind = mf["kind"]
    j = lambda v: json.dumps(v, separators=(",", ":"))
    if kind == "crnn":
        f = m["features"]
        norm = {"input": "logmel", "formula": "(logmel_db - norm_mean) / norm_std, then [1, 1, n_mels, frames]",
                "norm_mean": f["norm_mean"], "norm_std": f["norm_std"], "in_graph": False}
        inputs = f"logmel: float32 [1, 1, {m['architecture']['n_mels']}, frames] normalised log-mel window"
    else:
        norm = {"input": "embedding", "formula": "(embedding - norm.mean) * norm.scale", "in_graph": True}
        inputs = f"embedding: float32 [batch, {m['architecture']['input_dim']}] YAMNet patch embedding"
    out = {
        "name": m["name"], "version": m["version"], "task": m["task"], "kind": kind,
        "labels": j(m["labels"]),
        "inputs": inputs,
        "outputs": f"probabilities: float32 [{'1' if kind == 'crnn' else 'batch'}, {len(m['labels'])}] softmax over labels",
        "normalisation": j(norm),
        "source_file": mf["path"].name, "source_sha256": mf["sha256"], "source_bytes": str(mf["bytes"]),
        "selftest": j(m["selftest"]),
        "exporter": "deepinfant-edge training/export.py",
        METADATA_KEY: j(m),
    }
    for key in ("features", "window", "aggregation", "calibration", "gate", "body"):
        if key in m:
            out[key] = m[key] if isinstance(m[key], str) else j(m[key])
    return out


# -------------------------------------------------------------------------------------------------- ONNX

def export_onnx(mf: dict, module, path: Path) -> None:
    import onnx
    import torch
    x = torch.from_numpy(model_input(mf, mf["tensors"]["selftest.input"]))
    if mf["kind"] == "crnn":
        names, axes = ["logmel"], {"logmel": {3: "frames"}}     # batch 1: the node feeds one window at a time
    else:
        names, axes = ["embedding"], {"embedding": {0: "batch"}, "probabilities": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), input_names=names, output_names=["probabilities"],
                          opset_version=OPSET, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
    model = onnx.load(str(path))
    if mf["kind"] == "crnn":   # the exporter leaves the LSTM's batch symbolic; the graph takes batch 1
        d = model.graph.output[0].type.tensor_type.shape.dim[0]
        d.Clear()
        d.dim_value = 1
    meta = export_metadata(mf)
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    model.producer_name = "deepinfant-edge training/export.py"
    model.doc_string = (f"{mf['meta']['name']} {mf['meta']['version']} ({mf['meta']['task']}), exported from "
                        f"{mf['path'].name} (sha256 {mf['sha256']}). {meta['inputs']}; {meta['outputs']} "
                        f"{mf['meta']['labels']}.")
    model.graph.input[0].doc_string = meta["inputs"]
    model.graph.output[0].doc_string = meta["outputs"] + " " + json.dumps(mf["meta"]["labels"])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_session(path: Path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_probs(sess, mf: dict, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0].astype(np.float64)


def check_onnx(mf: dict, path: Path) -> dict:
    import onnx
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    want = export_metadata(mf)
    wrong = [k for k, v in want.items() if props.get(k) != v]
    sess = onnx_session(path)
    i, o = sess.get_inputs()[0], sess.get_outputs()[0]
    st = mf["meta"]["selftest"]
    p = onnx_probs(sess, mf, model_input(mf, mf["tensors"]["selftest.input"]))[0]
    delta = float(np.max(np.abs(p - np.asarray(st["expected"]))))
    res = dict(opset=opset, input={"name": i.name, "shape": i.shape, "type": i.type},
               output={"name": o.name, "shape": o.shape, "type": o.type}, metadata_keys=sorted(props),
               metadata_mismatch=wrong, selftest_max_delta=delta, selftest_tolerance=st["tolerance"],
               bytes=path.stat().st_size)
    if mf["kind"] == "crnn":   # a short window (a recording under 3 s) runs too
        short = mf["tensors"]["selftest.input"][:40]
        res["short_window_frames"] = 40
        res["short_window_sum"] = float(onnx_probs(sess, mf, normalise(mf, short)).sum())
    problems = []
    if opset != OPSET:
        problems.append(f"opset {opset} != {OPSET}")
    if wrong:
        problems.append(f"metadata differs for {wrong}")
    if not delta <= st["tolerance"]:
        problems.append(f"self-test max |Δp| {delta:.3g} > tolerance {st['tolerance']}")
    res["passed"] = not problems
    res["problems"] = problems
    return res


# ------------------------------------------------------------------------------------------------ Core ML

def coreml_available() -> tuple[bool, str]:
    try:
        import coremltools  # noqa: F401
        return True, coremltools.__version__
    except Exception as e:  # pragma: no cover - depends on the machine
        return False, f"{type(e).__name__}: {e}"


def export_coreml(mf: dict, module, path: Path):
    import logging
    import shutil
    import torch
    import coremltools as ct
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    x = torch.from_numpy(model_input(mf, mf["tensors"]["selftest.input"]))
    a = mf["meta"]["architecture"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, x)
        if mf["kind"] == "crnn":
            frames = mf["meta"]["window"]["frames"]
            lo = 2 ** len(a["conv_channels"])
            inp = ct.TensorType(name="logmel", dtype=np.float32,
                                shape=(1, 1, a["n_mels"], ct.RangeDim(lower_bound=lo, upper_bound=MAX_FRAMES, default=frames)))
        else:
            inp = ct.TensorType(name="embedding", dtype=np.float32, shape=(1, a["input_dim"]))
        ml = ct.convert(traced, inputs=[inp], outputs=[ct.TensorType(name="probabilities", dtype=np.float32)],
                        convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15,
                        compute_precision=ct.precision.FLOAT32)
    meta = export_metadata(mf)
    m = mf["meta"]
    ml.author = "DeepInfant Edge"
    ml.license = "Apache-2.0 (see NOTICE)"
    ml.version = m["version"]
    ml.short_description = (f"{m['name']} {m['version']} ({m['task']}) from {mf['path'].name} "
                            f"(sha256 {mf['sha256']}); labels {m['labels']}")
    ml.input_description[inp.name] = meta["inputs"]
    ml.output_description["probabilities"] = meta["outputs"] + " " + json.dumps(m["labels"])
    for k, v in meta.items():
        ml.user_defined_metadata[k] = v
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ml.save(str(path))


def check_coreml(mf: dict, path: Path) -> dict:
    import coremltools as ct
    from coremltools.proto import MIL_pb2
    spec = ct.utils.load_spec(str(path))
    d = spec.description
    a = mf["meta"]["architecture"]
    problems = []

    def arr(feature):
        t = feature.type.multiArrayType
        ranges = [[r.lowerBound, r.upperBound] for r in t.shapeRange.sizeRanges]
        return {"name": feature.name, "shape": list(t.shape), "ranges": ranges,
                "type": {t.FLOAT32: "float32", t.FLOAT16: "float16", t.DOUBLE: "float64", t.INT32: "int32"}.get(t.dataType, str(t.dataType))}
    ins = [arr(f) for f in d.input]
    outs = [arr(f) for f in d.output]
    if spec.specificationVersion != COREML_SPEC_VERSION:
        problems.append(f"specification version {spec.specificationVersion} != {COREML_SPEC_VERSION} (iOS 15)")
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type {spec.WhichOneof('Type')} is not mlProgram")
    fn = spec.mlProgram.functions["main"]
    opset = fn.opset
    if opset != COREML_OPSET:
        problems.append(f"op set {opset} != {COREML_OPSET}")
    block = fn.block_specializations[opset]
    ops = sorted({op.type for op in block.operations})
    fp16 = [op.type for op in block.operations for o in op.outputs
            if o.type.WhichOneof("type") == "tensorType" and o.type.tensorType.dataType == MIL_pb2.FLOAT16]
    if fp16:
        problems.append(f"float16 tensors in the program ({sorted(set(fp16))})")
    if mf["kind"] == "crnn":
        want_in = {"name": "logmel", "shape": [1, 1, a["n_mels"], mf["meta"]["window"]["frames"]],
                   "ranges": [[1, 1], [1, 1], [a["n_mels"], a["n_mels"]], [2 ** len(a["conv_channels"]), MAX_FRAMES]],
                   "type": "float32"}
    else:
        want_in = {"name": "embedding", "shape": [1, a["input_dim"]], "ranges": [], "type": "float32"}
    if ins != [want_in]:
        problems.append(f"input {ins} != {want_in}")
    want_out = {"name": "probabilities", "shape": [1, a["n_classes"]], "ranges": [], "type": "float32"}
    if len(outs) != 1 or outs[0]["name"] != "probabilities" or outs[0]["type"] != "float32" or \
            (outs[0]["shape"] and outs[0]["shape"] != want_out["shape"]):
        problems.append(f"output {outs} != {want_out}")
    user = dict(d.metadata.userDefined)
    want = export_metadata(mf)
    wrong = [k for k, v in want.items() if user.get(k) != v]
    if wrong:
        problems.append(f"metadata differs for {wrong}")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return dict(specification_version=spec.specificationVersion, model_type=spec.WhichOneof("Type"), opset=opset,
                ops=ops, inputs=ins, outputs=outs, float16_tensors=len(fp16), metadata_keys=sorted(user),
                metadata_mismatch=wrong, version=d.metadata.versionString, bytes=size,
                passed=not problems, problems=problems,
                note="Core ML does not run on Linux: spec checked, numbers not compared")


# ------------------------------------------------------------------------------------------------- parity

def find_binary(explicit: str | None) -> Path | None:
    for c in [explicit, os.environ.get("DEEPINFANT_EDGE"), ROOT / ".build" / "release" / "deepinfant-edge"]:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def parity_files(data: Path, n: int, seed_key: str) -> list[Path]:
    """`n` real recordings spread over the sources (round robin over sources, files in a fixed
    pseudo-random order keyed by `seed_key`), so every run of the same model checks the same files."""
    rows = list(csv.DictReader(open(data / "manifest.csv", newline="")))
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r["path"])
    for s in by_source:
        by_source[s].sort(key=lambda p: hashlib.sha256((seed_key + p).encode()).hexdigest())
    order = sorted(by_source, key=lambda s: (-len(by_source[s]), s))
    out: list[str] = []
    i = 0
    while len(out) < n and any(i < len(by_source[s]) for s in order):
        for s in order:
            if i < len(by_source[s]) and len(out) < n:
                out.append(by_source[s][i])
        i += 1
    return [data / "audio" / p for p in out]


def window_starts(frames: int, window: int, hop: int) -> list[int]:
    """`RecordingClassifier.windowStarts`: every hop from 0 while the window fits, plus one aligned to the end."""
    if frames <= window:
        return [0]
    starts = list(range(0, frames - window + 1, hop))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r


def swift_selftest_outputs(binary: Path, mf: dict, inputs: list[np.ndarray], tmp: Path) -> list[np.ndarray]:
    """The Swift engine's full-precision output for each input: `model inspect --json` on a copy of the model
    file whose `selftest.input` is that input (inspect reports the self-test's actual output)."""
    outs = []
    for k, x in enumerate(inputs):
        t = dict(mf["tensors"])
        t["selftest.input"] = np.ascontiguousarray(x, dtype=np.float32)
        p = tmp / f"probe{k % 4}.safetensors"
        write_model_file(p, t, mf["meta"])
        r = _run([binary, "model", "inspect", p, "--json"], check=False)
        try:
            st = json.loads(r.stdout)["selftest"]
        except Exception:
            raise RuntimeError(f"model inspect failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        outs.append(np.asarray(st["actual"], np.float64))
    return outs


def parity_crnn(mf: dict, onnx_path: Path, binary: Path, files: list[Path]) -> dict:
    m = mf["meta"]
    f, w = m["features"], m["window"]
    sess = onnx_session(onnx_path)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        per_window, per_rec, n_windows = 0.0, 0.0, 0
        too_short: list[str] = []
        onnx_rec: dict[str, np.ndarray] = {}
        for i, fp in enumerate(files):
            npy = tmp / f"f{i}.npy"
            _run([binary, "features", fp, "--out", npy, "--n-mels", f["n_mels"], "--fmin", f["fmin"], "--fmax",
                  f["fmax"], "--n-fft", f["n_fft"], "--hop", f["hop_length"]])
            feats = np.load(npy).astype(np.float32)
            if len(feats) < 2 ** len(m["architecture"]["conv_channels"]):
                too_short.append(str(fp))      # the node refuses it too (checked below)
                continue
            starts = window_starts(len(feats), w["frames"], w["hop_frames"])
            wins = [feats[s:s + w["frames"]] for s in starts]
            po = [onnx_probs(sess, mf, normalise(mf, x))[0] for x in wins]
            ps = swift_selftest_outputs(binary, mf, wins, tmp)
            for a, b in zip(po, ps):
                per_window = max(per_window, float(np.max(np.abs(a - b))))
            n_windows += len(wins)
            mean_log = np.mean([np.log(np.maximum(p, 1e-38)) for p in po], axis=0)
            e = np.exp(mean_log - mean_log.max())
            onnx_rec[str(fp)] = e / e.sum()
        r = _run([binary, "classify", "--model", mf["path"], "--json", *files], check=False)
        answered = 0
        for line in r.stdout.splitlines():
            o = json.loads(line)
            if "error" in o:
                if o["file"] not in too_short:
                    raise RuntimeError(f"classify failed on {o['file']}: {o['error']}")
                continue
            answered += 1
            swift = np.array([o["probabilities"][l] for l in m["labels"]], np.float64)
            per_rec = max(per_rec, float(np.max(np.abs(swift - onnx_rec[o["file"]]))))
        if answered != len(files) - len(too_short):
            raise RuntimeError(f"classify answered {answered} of {len(files) - len(too_short)} recordings")
    return dict(recordings=len(files) - len(too_short), refused_too_short=len(too_short), windows=n_windows, max_delta_window=per_window,
                max_delta_recording=per_rec, tolerance=PARITY_TOLERANCE,
                passed=per_window <= PARITY_TOLERANCE and per_rec <= PARITY_TOLERANCE,
                method="per window: ONNX vs the Swift engine (model inspect on the window) on `features` log-mel; "
                       "per recording: ONNX windows aggregated (softmax of mean log p) vs `classify --json` (6 significant digits)")


def parity_head(mf: dict, onnx_path: Path, binary: Path, files: list[Path], max_patches: int) -> dict:
    sess = onnx_session(onnx_path)
    yamnet = mf["path"].parent / "yamnet.safetensors"
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        emb_dir = tmp / "emb"
        cmd = [binary, "tag", "--json", "--top", "1", "--embeddings", emb_dir, *files]
        if yamnet.is_file():
            cmd[2:2] = ["--model", yamnet]
        _run(cmd)
        worst, n = 0.0, 0
        for fp in files:
            e = np.load(emb_dir / (fp.stem + ".npy")).astype(np.float32)
            idx = np.unique(np.linspace(0, len(e) - 1, min(len(e), max_patches)).round().astype(int))
            po = onnx_probs(sess, mf, e[idx])
            ps = swift_selftest_outputs(binary, mf, [e[k] for k in idx], tmp)
            for a, b in zip(po, ps):
                worst = max(worst, float(np.max(np.abs(a - b))))
            n += len(idx)
    return dict(recordings=len(files), patches=n, max_delta_patch=worst, tolerance=PARITY_TOLERANCE,
                passed=worst <= PARITY_TOLERANCE,
                method="ONNX on the node's embeddings (`tag --embeddings`) vs the Swift head (model inspect on the embedding)")


# --------------------------------------------------------------------------------------------------- main

def export(model_file: str | Path, onnx_out: Path | None, coreml_out: Path | None, *, binary: str | None = None,
           parity: bool = True, data: Path = DEFAULT_DATA, parity_n: int | None = None,
           max_patches: int = 12, log=print) -> dict:
    """Exports one model file and runs every check; returns the summary (raises ExportCheckFailed)."""
    import torch
    torch.set_num_threads(1)
    mf = read_model_file(model_file)
    module = build_module(mf)
    st = mf["meta"]["selftest"]
    with torch.no_grad():
        pt = module(torch.from_numpy(model_input(mf, mf["tensors"]["selftest.input"]))).double().numpy()[0]
    summary: dict[str, Any] = dict(
        model=str(mf["path"]), name=mf["meta"]["name"], version=mf["meta"]["version"], task=mf["meta"]["task"],
        kind=mf["kind"], labels=mf["meta"]["labels"], sha256=mf["sha256"], bytes=mf["bytes"],
        torch_selftest_max_delta=float(np.max(np.abs(pt - np.asarray(st["expected"])))),
        selftest_tolerance=st["tolerance"])
    failures = []
    if not summary["torch_selftest_max_delta"] <= st["tolerance"]:
        failures.append(f"PyTorch module self-test {summary['torch_selftest_max_delta']:.3g} > {st['tolerance']}")
    if onnx_out is not None:
        t0 = time.time()
        export_onnx(mf, module, Path(onnx_out))
        summary["onnx"] = check_onnx(mf, Path(onnx_out))
        summary["onnx"]["path"] = str(onnx_out)
        summary["onnx"]["seconds"] = round(time.time() - t0, 1)
        log(f"{mf['path'].name}: ONNX opset {summary['onnx']['opset']} -> {onnx_out}; self-test max |Δp| "
            f"{summary['onnx']['selftest_max_delta']:.2e} (tolerance {st['tolerance']})")
        failures += [f"ONNX: {p}" for p in summary["onnx"]["problems"]]
    if coreml_out is not None:
        ok, why = coreml_available()
        if not ok:
            summary["coreml"] = {"skipped": f"coremltools not importable ({why}); Core ML export skipped"}
            log(f"{mf['path'].name}: Core ML SKIPPED: coremltools is not installed ({why}); "
                "`pip install coremltools` to export it")
        else:
            t0 = time.time()
            export_coreml(mf, module, Path(coreml_out))
            summary["coreml"] = check_coreml(mf, Path(coreml_out))
            summary["coreml"].update(path=str(coreml_out), coremltools=why, seconds=round(time.time() - t0, 1))
            c = summary["coreml"]
            log(f"{mf['path'].name}: Core ML {COREML_TARGET} mlprogram (spec {c['specification_version']}, "
                f"{c['opset']}, fp32) -> {coreml_out}; spec checks {'pass' if c['passed'] else 'FAIL'}")
            failures += [f"Core ML: {p}" for p in c["problems"]]
    if parity and onnx_out is not None:
        b = find_binary(binary)
        if b is None:
            failures.append("parity: no deepinfant-edge binary (build it with `swift build -c release` or pass "
                            "--binary; --no-parity skips the check)")
        elif not (data / "manifest.csv").is_file():
            failures.append(f"parity: no data at {data} (--data DIR; --no-parity skips the check)")
        else:
            t0 = time.time()
            if mf["kind"] == "crnn":
                files = parity_files(data, parity_n or 24, mf["meta"]["name"])
                summary["parity"] = parity_crnn(mf, Path(onnx_out), b, files)
                log(f"{mf['path'].name}: parity ONNX vs Swift on {summary['parity']['recordings']} recordings / "
                    f"{summary['parity']['windows']} windows: max |Δp| window {summary['parity']['max_delta_window']:.2e}, "
                    f"recording {summary['parity']['max_delta_recording']:.2e}")
            else:
                files = parity_files(data, parity_n or 12, mf["meta"]["name"])
                summary["parity"] = parity_head(mf, Path(onnx_out), b, files, max_patches)
                log(f"{mf['path'].name}: parity ONNX vs Swift on {summary['parity']['recordings']} recordings / "
                    f"{summary['parity']['patches']} patches: max |Δp| {summary['parity']['max_delta_patch']:.2e}")
            summary["parity"].update(binary=str(b), seconds=round(time.time() - t0, 1),
                                     files=[str(p.relative_to(data)) for p in files])
            if not summary["parity"]["passed"]:
                failures.append(f"parity above {PARITY_TOLERANCE}")
    elif onnx_out is not None:
        summary["parity"] = {"skipped": "--no-parity"}
        log(f"{mf['path'].name}: parity with the Swift engine SKIPPED (--no-parity)")
    summary["failures"] = failures
    summary["passed"] = not failures
    if failures:
        err = ExportCheckFailed(f"{mf['path'].name}: " + "; ".join(failures))
        err.summary = summary
        raise err
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="DeepInfant model file (.safetensors): reason/cry CRNN or cry head")
    ap.add_argument("--onnx", type=Path, help="write the ONNX model here")
    ap.add_argument("--coreml", type=Path, help="write the Core ML package (.mlpackage) here")
    ap.add_argument("--binary", help="deepinfant-edge for the parity check (default .build/release/deepinfant-edge)")
    ap.add_argument("--no-parity", action="store_true", help="skip the parity check with the Swift engine")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder with manifest.csv and audio/")
    ap.add_argument("--parity-files", type=int, help="recordings for the parity check (CRNN 24, head 12)")
    ap.add_argument("--summary", type=Path, help="write the figures as JSON")
    args = ap.parse_args(argv)
    if args.onnx is None and args.coreml is None:
        ap.error("give --onnx and/or --coreml")
    try:
        s = export(args.model, args.onnx, args.coreml, binary=args.binary, parity=not args.no_parity,
                   data=args.data, parity_n=args.parity_files)
        rc = 0
    except ExportCheckFailed as e:
        print(f"EXPORT CHECK FAILED: {e}", file=sys.stderr)
        s, rc = getattr(e, "summary", None), 1
    if args.summary and s is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(s, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
