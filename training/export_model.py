"""Export a trained `training/crnn.py` CRNN to the single-file model format the Swift engine loads.

The format is described in docs/model-format.md. In short: a standard safetensors file whose tensors are
the model's `state_dict` (minus `num_batches_tracked`) plus `selftest.input`, all little-endian F32, and
whose `__metadata__` has one key, `deepinfant`, holding a JSON document (labels, architecture, feature
parameters, window, calibration, training provenance and a self-test vector).

Two entry points:

* `export_model(model, path, *, name, version, task, labels, features, window, training, calibration,
  selftest_input) -> dict` writes the model file and returns the metadata document it embedded.
  Temperature calibration, when given, is folded into `out.weight`/`out.bias` (divided by T) so the
  engine only ever applies a plain softmax. The self-test expectation is computed here with the model in
  eval mode on `selftest_input` (raw log-mel dB, `[frames, n_mels]`), normalised with
  `features["norm_mean"]`/`features["norm_std"]`, through the folded output layer.

* `write_goldens(model, path, inputs, norm_mean, norm_std, *, temperature=None)` writes a parity file:
  tensors `inputs` `[N, frames, n_mels]` (raw dB) and `probs` `[N, n_classes]` (softmax of the model's
  logits, divided by `temperature` when given, i.e. what the exported file must reproduce).

Example (what the training script does after training)::

    from crnn import CRNN
    from export_model import export_model
    meta = export_model(model, "models/deepinfant-reason.safetensors",
                        name="deepinfant-crnn-reason", version="1.0.0", task="reason",
                        labels=["belly_pain", "burping", "discomfort", "hungry", "tired"],
                        features=dict(sample_rate=16000, n_fft=2048, hop_length=512, n_mels=64,
                                      fmin=0.0, fmax=4000.0, norm_mean=-40.0, norm_std=20.0),
                        window=dict(seconds=3.0, hop_seconds=1.0, frames=94, hop_frames=31),
                        training=dict(data="...", date="2026-11-25", folds=[1, 2, 3, 4], metrics={}),
                        calibration=dict(method="temperature", temperature=1.7),
                        selftest_input=some_logmel_db_94x64)

Feature keys not given take the defaults in `FEATURE_DEFAULTS` (power 2, center, constant padding, hann,
slaney mel, dB ref 1 / amin 1e-10 / no top_db); `export_model` refuses parameters the Swift front end cannot
produce, so a bad export fails here rather than on the node.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

FORMAT = "deepinfant-model"
FORMAT_VERSION = 1
METADATA_KEY = "deepinfant"
SELFTEST_TENSOR = "selftest.input"
SELFTEST_TOLERANCE = 1e-4

FEATURE_DEFAULTS: dict[str, Any] = dict(
    sample_rate=16000, n_fft=2048, hop_length=512, n_mels=64, fmin=0.0, fmax=None,
    power=2.0, center=True, pad_mode="constant", window="hann", mel_htk=False, mel_norm="slaney",
    db_ref=1.0, db_amin=1e-10, db_top_db=None, norm_mean=0.0, norm_std=1.0,
)


def _check_features(f: dict[str, Any], n_mels: int) -> None:
    """Mirror of the Swift `ModelFeatureParameters.validate()` (keep the two in step)."""
    def bad(msg: str):
        raise ValueError(f"features: {msg}")
    if f["sample_rate"] != 16000:
        bad("sample_rate must be 16000 (the capture pipeline's rate)")
    n_fft, hop = int(f["n_fft"]), int(f["hop_length"])
    if n_fft < 16 or n_fft & (n_fft - 1):
        bad("n_fft must be a power of two >= 16")
    if not (1 <= hop <= n_fft):
        bad("hop_length must be in 1...n_fft")
    if int(f["n_mels"]) != n_mels:
        bad(f"n_mels {f['n_mels']} != architecture n_mels {n_mels}")
    if not (1 <= n_mels <= n_fft // 2 + 1):
        bad("n_mels must be in 1...n_fft/2+1")
    fmax = f["sample_rate"] / 2 if f["fmax"] is None else float(f["fmax"])
    if not (0.0 <= float(f["fmin"]) < fmax <= f["sample_rate"] / 2):
        bad("need 0 <= fmin < fmax <= sample_rate/2")
    if float(f["power"]) != 2.0:
        bad("power must be 2.0")
    if f["center"] is not True or f["pad_mode"] != "constant":
        bad("center must be true with pad_mode 'constant'")
    if f["window"] != "hann" or f["mel_htk"] is not False or f["mel_norm"] != "slaney":
        bad("window must be 'hann', mel_htk false, mel_norm 'slaney'")
    if float(f["db_ref"]) != 1.0 or not (0 < float(f["db_amin"]) <= 1e-3):
        bad("db_ref must be 1.0 and 0 < db_amin <= 1e-3")
    if f["db_top_db"] is not None and not (float(f["db_top_db"]) > 0):
        bad("db_top_db must be null or > 0")
    if not (math.isfinite(float(f["norm_mean"])) and float(f["norm_std"]) > 0):
        bad("norm_mean must be finite and norm_std > 0")


def _arch(model) -> dict[str, Any]:
    arch = dict(model.arch)
    # What the Swift engine supports; crnn.py builds exactly this.
    if arch.get("type") != "crnn" or arch.get("kernel") != 3 or arch.get("pool") != 2 or arch.get("lstm_layers") != 2:
        raise ValueError(f"unsupported architecture {arch}")
    return arch


def _state_tensors(model, temperature: float | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        a = v.detach().cpu().to(torch.float32).numpy().copy()
        if temperature is not None and k in ("out.weight", "out.bias"):
            a = a / np.float32(temperature)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"tensor {k} has NaN/Inf values")
        out[k] = np.ascontiguousarray(a, dtype="<f4")
    return out


@torch.no_grad()
def _probs(model, feats: np.ndarray, norm_mean: float, norm_std: float, temperature: float | None) -> np.ndarray:
    """Softmax probabilities for raw dB features `[N, frames, n_mels]` (or `[frames, n_mels]`)."""
    x = np.asarray(feats, dtype=np.float32)
    single = x.ndim == 2
    if single:
        x = x[None]
    was_training = model.training
    model.eval()
    try:
        t = torch.from_numpy((x - np.float32(norm_mean)) / np.float32(norm_std))
        t = t.permute(0, 2, 1).unsqueeze(1).contiguous()  # [N, 1, n_mels, frames]
        logits = model(t).to(torch.float64)
        if temperature is not None:
            logits = logits / temperature
        p = torch.softmax(logits, dim=-1).numpy()
    finally:
        model.train(was_training)
    return p[0] if single else p


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Plain safetensors writer (sorted names, contiguous offsets, 8-byte aligned header) so export needs no extra
    package. int8 arrays are written as `I8` (the YAMNet body's quantised weights); everything else as `F32`."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = np.asarray(tensors[name])
        if t.dtype == np.int8:
            a, dtype = np.ascontiguousarray(t), "I8"
        else:
            a, dtype = np.ascontiguousarray(t, dtype="<f4"), "F32"
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(len(h).to_bytes(8, "little"))
        fh.write(h)
        for b in blobs:
            fh.write(b)
    tmp.replace(path)
    _touch_embedding(path)


# The shipped models are linked into the executable by Sources/CEmbeddedModels/models.S (.incbin), which
# neither the compiler's dependency file nor SwiftPM tracks: touching it makes the next build take the new bytes.
_EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "Sources" / "Inference" / "Resources"
_EMBEDDING_SOURCE = Path(__file__).resolve().parent.parent / "Sources" / "CEmbeddedModels" / "models.S"


def _touch_embedding(path: Path) -> None:
    if Path(path).resolve().parent == _EMBEDDED_DIR and _EMBEDDING_SOURCE.exists():
        _EMBEDDING_SOURCE.touch()


def export_model(model, path, *, name: str, version: str, task: str, labels: Sequence[str],
                 features: dict, window: dict, training: dict, calibration: dict | None,
                 selftest_input: np.ndarray) -> dict:
    """Write `model` (a `crnn.CRNN`) to `path` in the DeepInfant model format; return the metadata dict.

    `features`: log-mel parameters (keys of `FEATURE_DEFAULTS`; `norm_mean`/`norm_std` are the input
    normalisation used in training). `window`: `seconds`, `hop_seconds`, `frames`, `hop_frames`.
    `calibration`: None or `{"method": "temperature", "temperature": T, ...}` (folded into `out`).
    `selftest_input`: raw log-mel dB `[frames, n_mels]`, at least 2**len(conv_channels) frames.
    """
    arch = _arch(model)
    labels = list(labels)
    if task not in ("reason", "cry"):
        raise ValueError("task must be 'reason' or 'cry'")
    if len(labels) != arch["n_classes"] or len(set(labels)) != len(labels) or not all(labels):
        raise ValueError(f"need {arch['n_classes']} distinct non-empty labels, got {labels}")
    feats = {**FEATURE_DEFAULTS, **features}
    if feats["fmax"] is None:
        feats["fmax"] = feats["sample_rate"] / 2
    feats = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                 and k not in ("sample_rate", "n_fft", "hop_length", "n_mels") else v) for k, v in feats.items()}
    _check_features(feats, arch["n_mels"])
    win = dict(window)
    for k in ("frames", "hop_frames"):
        if int(win[k]) < 1:
            raise ValueError(f"window.{k} must be >= 1")
    if int(win["frames"]) < 2 ** len(arch["conv_channels"]):
        raise ValueError("window.frames shorter than the conv stack's minimum input")
    temperature = None
    if calibration is not None:
        if calibration.get("method") != "temperature" or not float(calibration.get("temperature", 0)) > 0:
            raise ValueError("calibration must be {'method': 'temperature', 'temperature': T > 0}")
        temperature = float(calibration["temperature"])
        calibration = {**calibration, "temperature": temperature, "folded_into": "out"}

    st = np.ascontiguousarray(np.asarray(selftest_input, dtype=np.float32))
    if st.ndim != 2 or st.shape[1] != arch["n_mels"] or st.shape[0] < 2 ** len(arch["conv_channels"]):
        raise ValueError(f"selftest_input must be [frames >= {2 ** len(arch['conv_channels'])}, {arch['n_mels']}]")
    expected = _probs(model, st, feats["norm_mean"], feats["norm_std"], temperature)

    tensors = _state_tensors(model, temperature)
    tensors[SELFTEST_TENSOR] = st
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "name": name, "version": version, "task": task, "labels": labels,
        "architecture": arch, "features": feats, "window": win,
        "aggregation": "mean_log_prob",
        "calibration": calibration,
        "training": training,
        "selftest": {"input_tensor": SELFTEST_TENSOR, "expected": [float(x) for x in expected],
                     "tolerance": SELFTEST_TOLERANCE},
    }
    _write_safetensors(Path(path), tensors, {METADATA_KEY: json.dumps(meta, separators=(",", ":"))})
    return meta


def write_goldens(model, path, inputs, norm_mean: float, norm_std: float, *, temperature: float | None = None) -> None:
    """Write parity pairs: `inputs` `[N, frames, n_mels]` raw dB features and the model's `probs`."""
    x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
    if x.ndim != 3:
        raise ValueError("inputs must be [N, frames, n_mels]")
    p = _probs(model, x, norm_mean, norm_std, temperature).astype(np.float32)
    meta = {"norm_mean": str(float(norm_mean)), "norm_std": str(float(norm_std)),
            "temperature": "" if temperature is None else str(float(temperature))}
    _write_safetensors(Path(path), {"inputs": x, "probs": p}, meta)
