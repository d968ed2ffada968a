"""Whole-process `deepinfant-edge features FILE --out X.npy` against librosa's compute alone, same file, same run.

    python3 training/bench_features_process.py [--binary PATH ...] [--seconds 600] [--rounds 3]

Writes `--seconds` of noise as a 16-bit WAV, then per round times librosa 0.11's
`power_to_db(melspectrogram(...))` on the decoded samples (decoding not counted) and each binary's whole
process (start-up, decode, log-mel, writing the .npy). Several `--binary` compare builds side by side.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", default=None, help="deepinfant-edge binary (repeatable)")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    binaries = a.binary or [str(ROOT / ".build/release/deepinfant-edge")]
    tmp = tempfile.TemporaryDirectory()
    wav, npy = f"{tmp.name}/audio.wav", f"{tmp.name}/out.npy"
    rng = np.random.default_rng(0)
    sf.write(wav, (rng.standard_normal(int(a.seconds * 16000)) * 0.05).astype("float32"), 16000, subtype="PCM_16")
    y, _ = sf.read(wav, dtype="float32")

    def librosa_s() -> float:
        t = time.perf_counter()
        librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=2048, hop_length=512, n_mels=64, fmin=0,
                                                           fmax=8000, center=True, pad_mode="constant", power=2.0),
                            ref=1.0, amin=1e-10)
        return time.perf_counter() - t

    def process_s(b: str) -> float:
        t = time.perf_counter()
        subprocess.run([b, "features", wav, "--out", npy], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    librosa_s()  # warm-up (imports, caches)
    print(f"{a.seconds:.0f} s of audio; ratios are librosa's compute time / the whole process")
    for r in range(a.rounds):
        lib = librosa_s()
        cells = [f"librosa {lib:.3f} s"]
        for b in binaries:
            t = process_s(b)
            cells.append(f"{b}: {t:.3f} s ({lib / t:.2f}x)")
        print(f"round {r + 1}: " + " | ".join(cells))


if __name__ == "__main__":
    main()
