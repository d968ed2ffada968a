#!/usr/bin/env python3
"""Parity fixtures for the Swift YAMNet port: `Tests/InferenceTests/Fixtures/yamnet-golden.safetensors`.

Two signals, each run through `yamnet_reference.py` (float64) on the converted body file
(`Sources/Inference/Resources/yamnet.safetensors`, its sha256 is recorded in the metadata):

* `cry`: the first 30,960 samples (1.935 s) of `Tests/GateTests/Fixtures/cry-hungry.flac` = exactly 3 patches on
  the 0.48 s offline grid (15,600 + 2 x 7,680), no zero padding;
* `tone`: 15,600 samples (one patch) of a 1 kHz sine at amplitude 0.3 plus white noise of rms 0.01
  (numpy default_rng(20261202)), float32.

Tensors (all F32): `{cry,tone}.waveform` [n], `.logmel` [frames, 64] (every full frame: (n - 400) / 160 + 1, clipped
to input_clip), `.embeddings` [P, 1024], `.scores` [P, 521]. The Swift tests require max |delta| <= 1e-4 on
embeddings and scores and ~1e-4 relative on the log-mel.

    python3 training/make_yamnet_fixtures.py [--model FILE] [--out FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import yamnet_reference as ref  # noqa: E402

DEFAULT_OUT = ROOT / "Tests" / "InferenceTests" / "Fixtures" / "yamnet-golden.safetensors"
CRY = ROOT / "Tests" / "GateTests" / "Fixtures" / "cry-hungry.flac"
CRY_SAMPLES = 15600 + 2 * 7680      # 30960: three full patches
TONE_SEED = 20261202


def signals() -> dict[str, np.ndarray]:
    info = sf.info(str(CRY))
    if info.samplerate != 16000 or info.channels != 1:
        raise SystemExit(f"{CRY}: {info.samplerate} Hz, {info.channels} channels; need 16 kHz mono")
    cry, _ = sf.read(str(CRY), dtype="float32", frames=CRY_SAMPLES)
    assert cry.shape == (CRY_SAMPLES,)
    t = np.arange(15600, dtype=np.float64) / 16000
    rng = np.random.default_rng(TONE_SEED)
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t) + 0.01 * rng.standard_normal(15600)).astype(np.float32)
    return {"cry": cry, "tone": tone}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=ref.DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    from export_model import _write_safetensors

    m = ref.YAMNet.from_file(a.model)
    tensors: dict[str, np.ndarray] = {}
    for name, y in signals().items():
        E, S = m.embed(y)
        logmel = m.frontend(y)
        assert len(m.patches(len(y))) * m.patch_hop - m.patch_hop + m.patch_samples == len(y), "not whole patches"
        tensors[f"{name}.waveform"] = y
        tensors[f"{name}.logmel"] = logmel.astype(np.float32)
        tensors[f"{name}.embeddings"] = E.astype(np.float32)
        tensors[f"{name}.scores"] = S.astype(np.float32)
        top = np.argsort(-S[0], kind="stable")[:3]
        print(f"{name}: {len(y)} samples, logmel {logmel.shape}, {len(E)} patches; patch 0: "
              + ", ".join(f"{m.labels[i]} {S[0, i]:.3f}" for i in top))
    note = ("training/make_yamnet_fixtures.py: training/yamnet_reference.py (float64) on the body file of sha256 "
            f"{hashlib.sha256(Path(a.model).read_bytes()).hexdigest()}. cry = the first {CRY_SAMPLES} samples of "
            f"Tests/GateTests/Fixtures/cry-hungry.flac (3 patches, offline grid 0, 7680, 15360); tone = 1 kHz sine "
            f"0.3 + white noise rms 0.01 (numpy default_rng({TONE_SEED})), 15600 samples. logmel = every full frame, "
            "clipped to input_clip; embeddings/scores per patch. Swift tolerance: 1e-4.")
    _write_safetensors(a.out, tensors, {"note": note, "model_sha256": hashlib.sha256(Path(a.model).read_bytes()).hexdigest()})
    print(f"wrote {a.out}: {a.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
