"""training/export.py on the shipped model files: exports, metadata, self-test, parity, and refusals.

    swift build -c release && python3 -m pytest training/test_export.py

The parity tests need the built binary and ../shared/data (skipped otherwise, with the reason); the Core ML
test needs coremltools. No mocks: the real model files, ONNX Runtime, the real binary.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import export as EX  # noqa: E402

RES = HERE.parent / "Sources" / "Inference" / "Resources"
REASON = RES / "deepinfant-reason.safetensors"
HEAD = RES / "deepinfant-cry-head.safetensors"
HAVE_NODE = EX.find_binary(None) is not None and (EX.DEFAULT_DATA / "manifest.csv").is_file()
needs_node = pytest.mark.skipif(not HAVE_NODE, reason="needs `swift build -c release` and ../shared/data")


def test_reason_onnx_carries_the_model_file_and_passes_its_selftest(tmp_path):
    import onnx
    out = tmp_path / "reason.onnx"
    s = EX.export(REASON, out, None, parity=False, log=lambda *_: None)
    assert s["passed"] and s["onnx"]["opset"] == 17
    assert s["onnx"]["selftest_max_delta"] <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["source_sha256"] == hashlib.sha256(REASON.read_bytes()).hexdigest()
    assert json.loads(props["labels"]) == ["belly_pain", "burping", "discomfort", "hungry", "tired"]
    assert json.loads(props["features"])["n_fft"] == 2048 and json.loads(props["window"])["frames"] == 94
    assert props["name"] == "deepinfant-crnn-reason"
    assert s["onnx"]["input"]["name"] == "logmel" and s["onnx"]["input"]["shape"] == [1, 1, 64, "frames"]
    assert abs(s["onnx"]["short_window_sum"] - 1) < 1e-5     # a 40-frame window runs too


def test_a_wrong_selftest_expectation_fails_the_export(tmp_path):
    mf = EX.read_model_file(HEAD)
    meta = json.loads(json.dumps(mf["meta"]))
    meta["selftest"]["expected"] = [0.5, 0.5]          # the weights give ~[0.025, 0.975]
    bad = tmp_path / "bad-head.safetensors"
    EX.write_model_file(bad, mf["tensors"], meta)
    with pytest.raises(EX.ExportCheckFailed, match="self-test"):
        EX.export(bad, tmp_path / "bad.onnx", None, parity=False, log=lambda *_: None)


def test_yamnet_body_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="yamnet.tflite"):
        EX.build_module(EX.read_model_file(RES / "yamnet.safetensors"))


def test_window_starts_match_the_node_rule():
    assert EX.window_starts(219, 94, 31) == [0, 31, 62, 93, 124, 125]
    assert EX.window_starts(50, 94, 31) == [0]


@needs_node
def test_head_parity_with_the_swift_engine(tmp_path):
    s = EX.export(HEAD, tmp_path / "head.onnx", None, parity_n=4, max_patches=6, log=lambda *_: None)
    p = s["parity"]
    assert p["recordings"] == 4 and p["patches"] >= 8
    assert p["max_delta_patch"] <= 1e-4


@needs_node
def test_reason_parity_with_the_swift_engine(tmp_path):
    s = EX.export(REASON, tmp_path / "reason.onnx", None, parity_n=6, log=lambda *_: None)
    p = s["parity"]
    assert p["windows"] >= p["recordings"] >= 5
    assert p["max_delta_window"] <= 1e-4 and p["max_delta_recording"] <= 1e-4


def test_coreml_spec(tmp_path):
    ok, why = EX.coreml_available()
    if not ok:
        pytest.skip(f"coremltools not importable: {why}")
    s = EX.export(HEAD, None, tmp_path / "head.mlpackage", parity=False, log=lambda *_: None)
    c = s["coreml"]
    assert c["passed"], c["problems"]
    assert c["specification_version"] == 6 and c["opset"] == "CoreML5" and c["float16_tensors"] == 0
    assert c["inputs"][0]["name"] == "embedding" and c["outputs"][0]["name"] == "probabilities"
    assert "source_sha256" in c["metadata_keys"] and "labels" in c["metadata_keys"]
    assert np.isclose(s["torch_selftest_max_delta"], 0, atol=1e-4)
