"""`yamnet_head.py --feedback DIR` reads what `deepinfant-edge fleet export-feedback` writes.

The folder is built by hand in the layout of Sources/Feedback/FeedbackExportFolder.swift (manifest.json,
<node>/episodes.jsonl with the Swift encoder's keys, <node>/embeddings/<episode>.npy with the header its `npy`
writes), holding real YAMNet embeddings: the float reference embeddings of a real cry and of a tone from the
Swift parity fixture (Tests/InferenceTests/Fixtures/yamnet-golden.safetensors), and, when the embedding cache is
filled, the patches of real ESC-50 cat clips. No mocks.

    python3 -m pytest training/tests/test_feedback_folder.py
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

HERE = Path(__file__).resolve().parent
TRAINING = HERE.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING))
import yamnet_head as yh  # noqa: E402

GOLDEN = ROOT / "Tests" / "InferenceTests" / "Fixtures" / "yamnet-golden.safetensors"
HEAD = ROOT / "Sources" / "Inference" / "Resources" / "deepinfant-cry-head.safetensors"


def swift_npy(a: np.ndarray) -> bytes:
    """FeedbackExportFolder.npy: a v1.0 header padded with spaces to a multiple of 64, then little-endian float32."""
    rows, cols = a.shape
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
    while (10 + len(header) + 1) % 64 != 0:
        header += " "
    header += "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + np.ascontiguousarray(a, "<f4").tobytes()


def line(node, episode, label, emb, embeddings=True):
    d = {"cry_confidence": 0.97, "duration_s": 6.2, "episode_id": episode, "label": label,
         "labelled_at": "2026-12-03T07:00:00Z", "models": {"cry": "deepinfant-cry-head 2.0.0"}, "node_id": node,
         "patches": len(emb) if embeddings else 0, "probabilities": {"hungry": 0.8, "tired": 0.2}, "reason": "hungry",
         "started_at": "2026-12-03T06:50:00Z", "embedding_dim": 1024 if embeddings else 0}
    if embeddings:
        d["embeddings"] = f"embeddings/{episode}.npy"
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def write_folder(root: Path, nodes: dict) -> Path:
    """nodes: {node: [(episode id, label, embeddings or None)]}."""
    manifest = {"exported_at": "2026-12-03T07:05:00Z", "nodes": {}}
    for node, eps in nodes.items():
        (root / node / "embeddings").mkdir(parents=True)
        lines = []
        for eid, label, emb in eps:
            if emb is not None:
                (root / node / "embeddings" / f"{eid}.npy").write_bytes(swift_npy(emb))
            lines.append(line(node, eid, label, emb if emb is not None else np.zeros((0, 1024)), emb is not None))
        (root / node / "episodes.jsonl").write_text("\n".join(lines) + "\n")
        labels = {}
        for _, lab, _ in eps:
            labels[lab] = labels.get(lab, 0) + 1
        manifest["nodes"][node] = {"episodes": len(eps), "labels": labels}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return root


@pytest.fixture(scope="module")
def golden():
    g = load_file(str(GOLDEN))
    return g["cry.embeddings"].astype(np.float32), g["tone.embeddings"].astype(np.float32)


@pytest.fixture()
def folder(tmp_path, golden):
    cry, tone = golden
    return write_folder(tmp_path / "export", {
        "nursery": [("e-cry-1", "hungry", cry), ("e-tone-1", yh.NOT_CRY, tone)],
        "kitchen": [("e-cry-2", "tired", cry[:2].copy()), ("e-crnn", "hungry", None)],
    })


def test_reads_the_export_folder(folder, golden):
    cry, tone = golden
    eps = yh.read_feedback([folder])
    assert sorted((e["node"], e["episode_id"], e["label"], e["positive"], e["emb"].shape) for e in eps) == [
        ("kitchen", "e-cry-2", "tired", True, (2, 1024)),
        ("nursery", "e-cry-1", "hungry", True, (3, 1024)),
        ("nursery", "e-tone-1", "not_cry", False, (1, 1024)),
    ]
    by = {e["episode_id"]: e for e in eps}
    np.testing.assert_array_equal(by["e-cry-1"]["emb"], cry)  # bit-exact through the Swift header
    np.testing.assert_array_equal(by["e-tone-1"]["emb"], tone)
    assert eps.skipped == {"no embeddings": 1}  # the CRNN-detector node's episode has none
    s = eps.summary()
    assert s["positive_patches"] == 5 and s["negative_patches"] == 1 and s["nodes"]["nursery"] == {"hungry": 1, "not_cry": 1}


def test_nodes_are_groups_and_become_training_patches(folder):
    eps = yh.read_feedback([folder])
    folds = yh.feedback_folds(eps)
    assert set(folds) == {"nursery", "kitchen"} and folds["nursery"] != folds["kitchen"]  # each node whole in one fold
    assert folds == yh.feedback_folds(list(reversed(eps)))  # deterministic
    store = types.SimpleNamespace(rows=[], clips={}, synth={}, extra={}, aug={}, vetted={}, backend="tflite")
    yh.attach_feedback(store, eps)
    assert yh.store_cv_dir(store).name.endswith("_feedback")
    cfg = dict(head="logreg", C=0.01, extra=False)
    X, y, w = yh.training_set(store, list(yh.FOLDS), cfg)
    assert X.shape == (6, 1024) and int(y.sum()) == 5 and int((y == 0).sum()) == 1
    # classes weighted equally, as for the manifest's patches
    assert np.isclose(w[y == 1].sum(), w[y == 0].sum())
    # a fold without the nursery: only its node's patches
    k = folds["kitchen"]
    X, y, _ = yh.training_set(store, [k], cfg)
    assert X.shape == (2, 1024) and y.tolist() == [1, 1]
    # the patches train a head that separates them (real embeddings; the cry head's recipe)
    X, y, w = yh.training_set(store, list(yh.FOLDS), cfg)
    m = yh.fit_head(X, y, w, cfg)
    p = yh.head_probs(m, X)
    assert p[y == 1].min() > p[y == 0].max()


def test_shipped_head_hears_the_fixture_cry(golden):
    """The cry embeddings are a real cry: the shipped head scores them above the tone (sanity of the fixture)."""
    cry, tone = golden
    m = {k: v for k, v in load_file(str(HEAD)).items() if k != "selftest.input"}
    assert yh.head_probs(m, cry).max() > yh.head_probs(m, tone).max()


def test_real_cat_clips_from_the_cache(tmp_path):
    """With the embedding cache filled (`yamnet_head.py embed --backend tflite --sets clips`): ESC-50 cat clips'
    patches as a home's not_cry answers, read back exactly."""
    cache = yh.fx.CACHE / "yamnet_tflite" / "clips.pkl"
    if not cache.exists():
        pytest.skip("embedding cache not filled")
    clips = pickle.load(open(cache, "rb"))
    rows = [r for r in yh.read_manifest(yh.DEFAULT_DATA.resolve()) if r["label"] == "cat"][:3]
    if len(rows) < 3 or any(r["path"] not in clips for r in rows):
        pytest.skip("cat clips not in the cache")
    embs = [clips[r["path"]]["emb"][:16].astype(np.float32) for r in rows]
    d = write_folder(tmp_path / "cats", {"living-room": [(f"cat-{i}", yh.NOT_CRY, e) for i, e in enumerate(embs)]})
    eps = yh.read_feedback([d])
    assert len(eps) == 3 and not any(e["positive"] for e in eps)
    for e, ref in zip(sorted(eps, key=lambda e: e["episode_id"]), embs):
        np.testing.assert_array_equal(e["emb"], ref)


def test_cli_feedback_stage(folder):
    out = subprocess.run([sys.executable, str(TRAINING / "yamnet_head.py"), "feedback", "--feedback", str(folder)],
                         capture_output=True, text=True, check=True).stdout
    s = json.loads(out)
    assert s["episodes"] == 3 and s["skipped"] == {"no embeddings": 1} and set(s["folds"]) == {"nursery", "kitchen"}


def test_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError):
        yh.read_feedback([tmp_path / "x"])
