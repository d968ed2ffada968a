"""Feature extraction and augmentation cache for DeepInfant training.

Features (fixed, the Swift front end reproduces exactly this):
    librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=2048, hop_length=512, n_mels=64,
        fmin=0.0, fmax=4000.0, center=True, pad_mode='constant', power=2.0), ref=1.0, amin=1e-10, top_db=None).T
fmax = 4000 Hz: Android uploads of the Donate-a-Cry corpus carry no energy above 4 kHz, so training and live
inference see the same band.

Cache (training/cache/, git-ignored):
    clean.pkl  {path: float32 [frames, 64]} for every manifest row
    aug.pkl    {path: [float32 [frames, 64], ...]}  K augmented copies of every cry clip (is_cry == 1):
               pitch shift U(-2, +2) semitones, time stretch U(0.9, 1.1), additive background noise at
               SNR U(0, 20) dB (p = 0.8): a non-cry clip of the SAME fold (so a training copy never carries
               audio of a held-out fold), pink noise, or mains hum (50/60 Hz + harmonics) with pink noise.

Usage: python3 training/features.py [--data ../shared/data] [--copies 4] [--jobs 2]
"""
from __future__ import annotations

import argparse
import csv
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".." / "shared" / "data"
CACHE = REPO / "training" / "cache"

SR = 16000
FEATURES = dict(sample_rate=SR, n_fft=2048, hop_length=512, n_mels=64, fmin=0.0, fmax=4000.0, power=2.0,
                center=True, pad_mode="constant", window="hann", mel_htk=False, mel_norm="slaney",
                db_ref=1.0, db_amin=1e-10, db_top_db=None)
SILENCE_DB = -100.0  # power_to_db(0, amin=1e-10)
AUG_VERSION = 1


def logmel(y: np.ndarray) -> np.ndarray:
    import librosa
    m = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=512, n_mels=64, fmin=0.0,
                                       fmax=4000.0, center=True, pad_mode="constant", power=2.0)
    return librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None).T.astype(np.float32)


def read_manifest(data: Path) -> list[dict]:
    with open(data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["is_cry"] = int(r["is_cry"])
        r["fold"] = int(r["fold"])
    return rows


def load_audio(data: Path, rel: str) -> np.ndarray:
    import soundfile as sf
    y, sr = sf.read(str(data / "audio" / rel), dtype="float32", always_2d=False)
    if y.ndim > 1:
        y = y.mean(axis=1)
    assert sr == SR, (rel, sr)
    return y


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)
    x = np.fft.irfft(spec, n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    f0 = rng.choice([50.0, 60.0])
    t = np.arange(n) / SR
    x = np.zeros(n)
    for h in range(1, 8):
        x += rng.uniform(0.1, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    x = x / (np.std(x) + 1e-12) + 0.3 * pink_noise(n, rng)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def fit_length(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) >= n:
        s = rng.integers(0, len(x) - n + 1)
        return x[s:s + n]
    reps = int(np.ceil(n / max(len(x), 1)))
    return np.tile(x, reps)[:n]


def augment(y: np.ndarray, noise_paths: list[str], data: Path, rng: np.random.Generator, noise_p: float = 0.8) -> np.ndarray:
    import librosa
    steps = rng.uniform(-2.0, 2.0)
    rate = rng.uniform(0.9, 1.1)
    z = librosa.effects.time_stretch(y, rate=rate)
    z = librosa.effects.pitch_shift(z, sr=SR, n_steps=steps)
    if rng.random() < noise_p:
        u = rng.random()
        if u < 0.6 and noise_paths:
            nz = load_audio(data, noise_paths[rng.integers(len(noise_paths))])
            nz = fit_length(nz, len(z), rng)
        elif u < 0.8:
            nz = pink_noise(len(z), rng)
        else:
            nz = hum(len(z), rng)
        snr = rng.uniform(0.0, 20.0)
        ps = float(np.mean(z ** 2)) + 1e-12
        pn = float(np.mean(nz ** 2)) + 1e-12
        z = z + nz * np.sqrt(ps / (pn * 10 ** (snr / 10)))
    peak = np.max(np.abs(z)) + 1e-12
    if peak > 1.0:
        z = z / peak
    return z.astype(np.float32)


def _clean_job(args):
    data, rel = args
    return rel, logmel(load_audio(data, rel))


def _aug_job(args):
    data, rel, noise_paths, copies, seed, *rest = args
    noise_p = rest[0] if rest else 0.8
    rng = np.random.default_rng(seed)
    y = load_audio(data, rel)
    return rel, [logmel(augment(y, noise_paths, data, rng, noise_p)) for _ in range(copies)]


def build_cache(data: Path, copies: int = 4, jobs: int = 2, seed: int = 1234, force: bool = False):
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(data)
    from multiprocessing import Pool
    clean_p = CACHE / "clean.pkl"
    aug_p = CACHE / f"aug_v{AUG_VERSION}_k{copies}_s{seed}.pkl"
    t0 = time.time()
    if force or not clean_p.exists():
        with Pool(jobs) as pool:
            clean = dict(pool.map(_clean_job, [(data, r["path"]) for r in rows], chunksize=8))
        pickle.dump(clean, open(clean_p, "wb"), protocol=4)
        print(f"clean features: {len(clean)} clips, {time.time() - t0:.1f}s", flush=True)
    if force or not aug_p.exists():
        t1 = time.time()
        aug = _augmented_copies(data, rows, lambda r: r["is_cry"] == 1, copies, jobs, seed, 0.8)
        pickle.dump(aug, open(aug_p, "wb"), protocol=4)
        print(f"augmented features: {len(aug)} clips x {copies}, {time.time() - t1:.1f}s", flush=True)
    return pickle.load(open(clean_p, "rb")), pickle.load(open(aug_p, "rb")), rows


def _augmented_copies(data: Path, rows, keep, copies: int, jobs: int, seed: int, noise_p: float) -> dict:
    """{path: [log-mel of `copies` augmented copies]} for the rows `keep` selects; the noise mixed in comes from
    the other non-cry clips of the row's own fold (a training copy never holds audio of another fold)."""
    from multiprocessing import Pool
    noise_by_fold = {f: [r["path"] for r in rows if r["is_cry"] == 0 and r["fold"] == f] for f in range(1, 5)}
    jobs_ = [(data, r["path"], [p for p in noise_by_fold[r["fold"]] if p != r["path"]], copies, seed + i, noise_p)
             for i, r in enumerate(rows) if keep(r)]
    with Pool(jobs) as pool:
        return dict(pool.map(_aug_job, jobs_, chunksize=4))


def build_negative_cache(data: Path, copies: int = 4, jobs: int = 2, seed: int = 4321, noise: bool = True):
    """Audio-domain copies (pitch, stretch and, with `noise`, noise: `augment`) of the non-cry clips other than
    FSDD's spoken digits (which never fool the detector): a cat or a siren a semitone higher is still not a cry."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(data)
    path = CACHE / f"aug_neg_v{AUG_VERSION}_k{copies}_s{seed}{'' if noise else '_nonoise'}.pkl"
    if not path.exists():
        t0 = time.time()
        aug = _augmented_copies(data, rows, lambda r: r["is_cry"] == 0 and r["source"] != "fsdd", copies, jobs, seed,
                                0.8 if noise else 0.0)
        pickle.dump(aug, open(path, "wb"), protocol=4)
        print(f"augmented negatives: {len(aug)} clips x {copies}, {time.time() - t0:.1f}s", flush=True)
    return pickle.load(open(path, "rb"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    build_cache(Path(a.data), a.copies, a.jobs, force=a.force)


if __name__ == "__main__":
    sys.exit(main())
