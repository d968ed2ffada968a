"""The NumPy front-end reference against the node itself, on real recordings of ../shared/data.

    swift build -c release && python3 -m pytest training/test_frontend_reference.py

Needs the built binary (`.build/release/deepinfant-edge` or $DEEPINFANT_EDGE) and the data folder; without
either the tests are skipped with the reason. No mocks: every figure comes from the binary's output.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import frontend_reference as fr  # noqa: E402

ROOT = HERE.parent
DATA = Path(os.environ.get("DEEPINFANT_DATA", ROOT.parent / "shared" / "data"))
REASON = ROOT / "Sources" / "Inference" / "Resources" / "deepinfant-reason.safetensors"
TOLERANCE_DB = 0.01
FLOOR_DB = -80.0


def _binary() -> Path | None:
    for c in (os.environ.get("DEEPINFANT_EDGE"), ROOT / ".build" / "release" / "deepinfant-edge"):
        if c and Path(c).is_file():
            return Path(c)
    return None


BINARY = _binary()
needs_node = pytest.mark.skipif(BINARY is None or not (DATA / "manifest.csv").is_file(),
                                reason="needs `swift build -c release` and ../shared/data")


def _recordings(n: int) -> list[Path]:
    """n recordings over every source (Donate-a-Cry iOS and Android uploads, ESC-50, FSDD, librosa, pyannote)."""
    import csv
    rows = list(csv.DictReader(open(DATA / "manifest.csv", newline="")))
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(r["source"], []).append(r["path"])
    out: list[str] = []
    k = 0
    while len(out) < n:
        for s in sorted(by):
            if len(out) < n and len(by[s]) > 0:
                out.append(by[s][(k * 37) % len(by[s])])
        k += 1
    return [DATA / "audio" / p for p in out]


def test_parameters_match_the_shipped_model_file():
    fe = fr.FrontEnd.from_model(REASON)
    assert (fe.sample_rate, fe.n_fft, fe.hop_length, fe.n_mels, fe.fmin, fe.fmax) == (16000, 2048, 512, 64, 0.0, 4000.0)
    assert (fe.window_frames, fe.hop_frames, fe.min_frames) == (94, 31, 8)
    assert fe == fr.FrontEnd()     # the defaults are the shipped model's


def test_window_rule():
    fe = fr.FrontEnd()
    assert fr.window_starts(94, fe) == [0]
    assert fr.window_starts(40, fe) == [0]
    assert fr.window_starts(219, fe) == [0, 31, 62, 93, 124, 125]      # a 7 s recording: last window at the end
    assert fr.window_starts(187, fe) == [0, 31, 62, 93]                 # 93 + 94 = 187: no extra window
    with pytest.raises(ValueError):
        fr.window_starts(7, fe)


def test_aggregation_and_unknown_rule():
    labels = ["a", "b", "c"]
    p = fr.aggregate([np.array([0.9, 0.05, 0.05]), np.array([0.1, 0.8, 0.1])])
    # geometric mean, renormalised: sqrt(.9*.1) vs sqrt(.05*.8) vs sqrt(.05*.1)
    g = np.sqrt([0.09, 0.04, 0.005])
    assert np.allclose(p, g / g.sum())
    assert fr.reason(p, labels) == "a"
    assert fr.reason(np.array([0.44, 0.30, 0.26]), labels) == "unknown"
    assert fr.reason(np.array([0.45, 0.30, 0.25]), labels) == "a"


@needs_node
def test_logmel_matches_deepinfant_edge_features(tmp_path):
    worst, bins, frames_total = 0.0, 0, 0
    for i, path in enumerate(_recordings(12)):
        out = tmp_path / f"{i}.npy"
        subprocess.run([str(BINARY), "features", str(path), "--out", str(out)], check=True, capture_output=True)
        swift = np.load(out)
        ref = fr.logmel(fr.read_audio(path))
        assert ref.shape == swift.shape, path
        loud = swift > FLOOR_DB
        d = np.abs(ref.astype(np.float64) - swift)[loud]
        assert d.size > 0
        worst = max(worst, float(d.max()))
        bins += int(d.size)
        frames_total += len(swift)
    print(f"front end: max |Δ| {worst:.2e} dB over {bins} bins above {FLOOR_DB} dB ({frames_total} frames, 12 recordings)")
    assert worst <= TOLERANCE_DB


@needs_node
def test_reference_with_onnx_export_reproduces_classify(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    import onnxruntime as ort
    import export
    onnx_path = tmp_path / "reason.onnx"
    export.export(REASON, onnx_path, None, parity=False, log=lambda *_: None)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    labels = json.loads(sess.get_modelmeta().custom_metadata_map["labels"])
    files = [p for p in _recordings(8) if len(fr.read_audio(p)) >= 8 * 512]
    r = subprocess.run([str(BINARY), "classify", "--json", *map(str, files)], check=True, capture_output=True, text=True)
    worst = 0.0
    for line, path in zip(r.stdout.splitlines(), files):
        o = json.loads(line)
        assert o["file"] == str(path)
        p = fr.classify(fr.read_audio(path), lambda x: sess.run(None, {"logmel": x})[0])
        node = np.array([o["probabilities"][l] for l in labels])
        worst = max(worst, float(np.abs(p - node).max()))
        assert labels[int(np.argmax(p))] == o["reason"]
    print(f"reference + ONNX vs classify: max |Δp| {worst:.2e} over {len(files)} recordings")
    assert worst <= 1e-4
