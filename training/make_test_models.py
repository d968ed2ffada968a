"""Make the Swift engine's test fixtures and the placeholder embedded model (seeded, reproducible).

    python training/make_test_models.py            # writes everything below
    python training/make_test_models.py --check    # re-creates into a temp dir and compares

Writes
* Tests/InferenceTests/Fixtures/tiny.safetensors: conv (4, 8) with conv bias, lstm 16, mean pooling,
  dense [8], temperature calibration 1.5; goldens tiny-golden-{94,37,13,8}.safetensors (frame counts that
  are not multiples of 8 and shorter than a window; 8 is the minimum for two pool stages... and the others).
* Tests/InferenceTests/Fixtures/medium.safetensors: conv (8, 16, 32), lstm 32, last-state pooling,
  dense [16, 12], no calibration, BN statistics randomised; goldens medium-golden-{94,50,17}.safetensors.
* Sources/Inference/Resources/deepinfant-reason.safetensors: realistic-size (32, 64, 128) / lstm 128 /
  dense [64] randomly-initialised model, version "0.0.0-untrained", until the trained one replaces it.
* Sources/Inference/Resources/deepinfant-cry.safetensors: untrained cry detector (16, 32, 64) / lstm 64 /
  dense [32], labels ["not_cry", "cry"], version "0.0.0-untrained", likewise a placeholder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crnn import CRNN  # noqa: E402
from export_model import export_model, write_goldens  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests/InferenceTests/Fixtures"
RES = ROOT / "Sources/Inference/Resources"
LABELS = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
FEATURES = dict(sample_rate=16000, n_fft=2048, hop_length=512, n_mels=64, fmin=0.0, fmax=8000.0,
                norm_mean=-40.0, norm_std=20.0)
WINDOW = dict(seconds=3.0, hop_seconds=1.0, frames=94, hop_frames=31)


def randomise_bn(model: CRNN, g: torch.Generator) -> None:
    """Non-trivial batch-norm statistics so folding BN into the conv is actually exercised."""
    with torch.no_grad():
        for b in model.blocks:
            c = b.bn.num_features
            b.bn.weight.copy_(0.5 + torch.rand(c, generator=g))
            b.bn.bias.copy_(0.2 * torch.randn(c, generator=g))
            b.bn.running_mean.copy_(0.3 * torch.randn(c, generator=g))
            b.bn.running_var.copy_(0.5 + torch.rand(c, generator=g))


def sharpen(model: CRNN, k: float) -> None:
    """Scale the output layer so probabilities are far from uniform (parity checks then mean something)."""
    with torch.no_grad():
        model.out.weight.mul_(k)
        model.out.bias.mul_(k)


def feats(rng: np.random.Generator, n: int, frames: int, n_mels: int = 64) -> np.ndarray:
    """Plausible log-mel dB: a smooth spectral envelope plus noise, roughly -80...0 dB."""
    env = np.linspace(-20, -70, n_mels, dtype=np.float32)[None, None, :]
    x = env + 12 * rng.standard_normal((n, frames, n_mels)).astype(np.float32)
    x += 10 * np.sin(np.arange(frames, dtype=np.float32) / 5)[None, :, None]
    return np.clip(x, -100, 0).astype(np.float32)


def placeholder_ok(path: Path) -> bool:
    """Only write a placeholder where no real (trained) model has been put in its place."""
    if not path.exists():
        return True
    from safetensors import safe_open
    try:
        with safe_open(str(path), "np") as f:
            return '"0.0.0-untrained"' in f.metadata().get("deepinfant", "")
    except Exception:
        return False


def placeholder(path: Path, task: str, labels: list, seed: int, arch: dict, training: dict) -> None:
    """An untrained but well-conditioned model for `task` at `path`, unless a trained one is there.
    Seeds: torch `seed`, BN generator `11 * seed`, features `111 * seed`."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(11 * seed)
    rng = np.random.default_rng(111 * seed)
    model = CRNN(64, len(labels), pooling="mean", **arch)
    randomise_bn(model, g)
    sharpen(model, 10.0)
    model.eval()
    if not placeholder_ok(path):
        print("keeping", path, "(not a placeholder)")
        return
    export_model(model, path, name=f"deepinfant-crnn-{task}", version="0.0.0-untrained", task=task, labels=labels,
                 features={**FEATURES, "fmax": 8000.0}, window=WINDOW, training={**training, "seed": seed},
                 calibration=None, selftest_input=feats(rng, 1, 94)[0])


def make(out_fix: Path, out_res: Path) -> None:
    training = dict(data="none: randomly initialised", date="2026-11-25", folds=[], metrics={},
                    seed=None, script="training/make_test_models.py")

    # tiny: two conv blocks with conv bias (the format allows it), mean pooling, calibration folded.
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(11)
    rng = np.random.default_rng(111)
    tiny = CRNN(64, 5, conv_channels=(4, 8), lstm_hidden=16, dense=(8,), pooling="mean")
    for b in tiny.blocks:
        conv = b.conv
        b.conv = torch.nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1, bias=True)
    randomise_bn(tiny, g)
    sharpen(tiny, 20.0)
    tiny.eval()
    export_model(tiny, out_fix / "tiny.safetensors", name="test-tiny", version="0.0.0-test", task="reason",
                 labels=LABELS, features=FEATURES, window=WINDOW, training={**training, "seed": 1},
                 calibration=dict(method="temperature", temperature=1.5), selftest_input=feats(rng, 1, 94)[0])
    for frames, n in ((94, 4), (37, 3), (13, 2), (8, 2)):
        write_goldens(tiny, out_fix / f"tiny-golden-{frames}.safetensors", feats(rng, n, frames),
                      FEATURES["norm_mean"], FEATURES["norm_std"], temperature=1.5)

    # medium: three blocks, last-state pooling, two dense layers, cry-detector labels.
    torch.manual_seed(2)
    g = torch.Generator().manual_seed(22)
    rng = np.random.default_rng(222)
    med = CRNN(64, 2, conv_channels=(8, 16, 32), lstm_hidden=32, dense=(16, 12), pooling="last")
    randomise_bn(med, g)
    sharpen(med, 3.0)
    med.eval()
    export_model(med, out_fix / "medium.safetensors", name="test-medium", version="0.0.0-test", task="cry",
                 labels=["not_cry", "cry"], features=FEATURES, window=WINDOW, training={**training, "seed": 2},
                 calibration=None, selftest_input=feats(rng, 1, 50)[0])
    for frames, n in ((94, 3), (50, 2), (17, 2)):
        write_goldens(med, out_fix / f"medium-golden-{frames}.safetensors", feats(rng, n, frames),
                      FEATURES["norm_mean"], FEATURES["norm_std"])

    # placeholder embedded models (reason: the real architecture; cry detector, the gate's first stage:
    # smaller), untrained; a trained model already in Resources is kept.
    placeholder(out_res / "deepinfant-reason.safetensors", "reason", LABELS, seed=3,
                arch=dict(conv_channels=(32, 64, 128), lstm_hidden=128, dense=(64,)), training=training)
    placeholder(out_res / "deepinfant-cry.safetensors", "cry", ["not_cry", "cry"], seed=4,
                arch=dict(conv_channels=(16, 32, 64), lstm_hidden=64, dense=(32,)), training=training)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare bytes")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.check:
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            make(Path(d) / "fix", Path(d) / "res")
            bad = [p.name for p in (Path(d) / "fix").iterdir() if p.read_bytes() != (FIX / p.name).read_bytes()]
            print("differ:", bad or "none")
            sys.exit(1 if bad else 0)
    make(FIX, RES)
    for p in sorted(list(FIX.glob("*.safetensors")) + list(RES.glob("*.safetensors"))):
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
