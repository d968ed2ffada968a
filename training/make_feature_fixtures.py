"""Reference log-mel features from librosa for the Swift parity tests (Tests/FeaturesTests/Fixtures).

Writes small inputs (FLAC excerpts of real recordings from ../shared/data, synthetic signals as .npy) and
librosa's output for each parameter set, plus cases.json listing them. Run from the repo root:

    python3 training/make_feature_fixtures.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

SR = 16000
PARAM_SETS = {
    # The `features` CLI default, the model's band (fmax 4 kHz), and an unusual set.
    "m64_0_8000": dict(n_mels=64, fmin=0.0, fmax=8000.0, n_fft=2048, hop_length=512),
    "m64_0_4000": dict(n_mels=64, fmin=0.0, fmax=4000.0, n_fft=2048, hop_length=512),
    "m40_50_7600_h256_f1024": dict(n_mels=40, fmin=50.0, fmax=7600.0, n_fft=1024, hop_length=256),
}
REAL = {
    # name: (path under audio/, offset s, duration s, attribution)
    "cry_ios_tired": ("donateacry/tired/03ADDCFB-354E-416D-BF32-260CF47F7060-1433658024-1.1-f-04-ti.flac", 1.0, 3.0,
                      "Donate-a-Cry corpus (github.com/gveres/donateacry-corpus), ODbL 1.0 / DbCL 1.0"),
    "cry_android_hungry": ("donateacry/hungry/02c3b725-26e4-4a2c-9336-04ddc58836d9-1430726196216-1.7-m-04-hu.flac", 1.0, 3.0,
                           "Donate-a-Cry corpus (github.com/gveres/donateacry-corpus), ODbL 1.0 / DbCL 1.0"),
    "dog_esc50": ("esc50/dog/4-182395-A-0.flac", 0.0, 3.0,
                  "ESC-50 clip 4-182395-A-0 (github.com/karolpiczak/ESC-50, from freesound.org), CC BY"),
    "speech_fsdd": ("fsdd/0_george_0.flac", 0.0, None,
                    "Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0"),
}


def synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(2 * SR) / SR
    return {
        "sine440": (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        "chirp": (0.8 * np.sin(2 * np.pi * (50 * t + (7900 - 50) / 4 * t ** 2))).astype(np.float32),
        "silence": np.zeros(SR, dtype=np.float32),
        "noise_fullscale": rng.uniform(-1, 1, 2 * SR).astype(np.float32),
        "short_1000": (0.3 * rng.standard_normal(1000)).astype(np.float32),
        "tiny_100": (0.3 * rng.standard_normal(100)).astype(np.float32),
    }


def logmel(y: np.ndarray, p: dict) -> np.ndarray:
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=p["n_fft"], hop_length=p["hop_length"], n_mels=p["n_mels"],
                                       fmin=p["fmin"], fmax=p["fmax"], center=True, pad_mode="constant", power=2.0)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None).T.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(root.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(root / "Tests" / "FeaturesTests" / "Fixtures"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases, attribution = [], []
    inputs: dict[str, tuple[str, np.ndarray]] = {}
    for name, (rel, offset, dur, credit) in REAL.items():
        y, sr = sf.read(Path(args.data) / "audio" / rel, dtype="float32")
        assert sr == SR
        start = int(offset * SR)
        y = y[start:start + int(dur * SR)] if dur else y[start:]
        sf.write(out / f"{name}.flac", y, SR, subtype="PCM_16")
        y, _ = sf.read(out / f"{name}.flac", dtype="float32")  # exactly what the Swift side will decode
        inputs[name] = (f"{name}.flac", y)
        attribution.append(f"{name}.flac: excerpt of {rel}; {credit}")
    for name, y in synthetic().items():
        np.save(out / f"{name}.npy", y)
        inputs[name] = (f"{name}.npy", y)
    for pname, p in PARAM_SETS.items():
        for name, (file, y) in inputs.items():
            if pname == "m40_50_7600_h256_f1024" and name not in ("cry_ios_tired", "chirp", "tiny_100"):
                continue
            ref = np.ascontiguousarray(logmel(y, p))
            np.save(out / f"{name}__{pname}.npy", ref)
            cases.append(dict(name=name, input=file, params=p, expected=f"{name}__{pname}.npy"))
    (out / "cases.json").write_text(json.dumps({"librosa": librosa.__version__, "cases": cases}, indent=1))
    (out / "ATTRIBUTION.txt").write_text("Audio excerpts used as test fixtures:\n" + "\n".join(attribution) + "\n")
    print(f"{len(cases)} cases in {out}")


if __name__ == "__main__":
    main()
