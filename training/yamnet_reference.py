#!/usr/bin/env python3
"""NumPy reference of the YAMNet body file (docs/model-format-yamnet.md): the executable definition of its
front end, patch grid and body, computed from the converted `.safetensors` file (never from the TFLite graph).

Precision: float64 throughout (waveform, window, FFT, mel matrix, log, weights dequantised as
`float64(scale) * int8`, activations, sums). The Swift engine computes the same in float32; the parity fixtures
(`make_yamnet_fixtures.py`) and the file's self-test allow 1e-4.

    frontend(waveform)   -> log-mel [frames, 64]: frame t = samples [160 t, 160 t + 400), periodic Hann (400),
                            zero-padded to 512, |rfft|, HTK mel (64 bands, 125-7500 Hz), log(mel + 0.001), clipped
                            to architecture.input_clip
    patches(n_samples)   -> patch starts (samples) of the offline grid: 0, 7680, ..., K*7680 with
                            K = ceil(max(0, n - 15600) / 7680); the waveform is zero-padded at the end to
                            K*7680 + 15600 samples (as the official yamnet `features.py` pads)
    body(logmel_patch)   -> (embedding [1024], scores [521]) of one [96, 64] patch
    embed(waveform)      -> (embeddings [P, 1024], scores [P, 521]) on the offline grid

Module-level functions use the shipped file `Sources/Inference/Resources/yamnet.safetensors` (loaded once);
`YAMNet.from_file(path)` / `YAMNet.from_tensors(tensors, meta)` give a model object with the same methods.

    python3 training/yamnet_reference.py [--model FILE] [AUDIO...]   # self-test, timing, top classes per patch
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_MODEL = ROOT / "Sources" / "Inference" / "Resources" / "yamnet.safetensors"
METADATA_KEY = "deepinfant"

_DTYPES = {"F32": "<f4", "I8": "i1", "F64": "<f8", "I32": "<i4"}


# ------------------------------------------------------------------------------------------ container
def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A minimal safetensors reader (F32/I8): tensors by name and the `__metadata__` strings. Checks that the
    data section is exactly the tensors end to end (what the Swift loader requires)."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file")
    n = int.from_bytes(raw[:8], "little")
    if not (2 <= n <= len(raw) - 8):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n:]
    spans, out = [], {}
    for name, info in header.items():
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        a, b = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        if b - a != int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize:
            raise ValueError(f"{path}: tensor {name}: {b - a} bytes for shape {shape}")
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(shape).copy()
        spans.append((a, b))
    spans.sort()
    pos = 0
    for a, b in spans:
        if a != pos:
            raise ValueError(f"{path}: data offsets overlap or leave a gap at byte {pos}")
        pos = b
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} trailing bytes after the tensors")
    return out, meta


# ------------------------------------------------------------------------------------------ front end
def hann_periodic(n: int) -> np.ndarray:
    """w[i] = 0.5 - 0.5 cos(2 pi i / n), i = 0..n-1 (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n, dtype=np.float64) / n)


def hz_to_mel(f):
    """HTK mel: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(n_mels: int = 64, n_bins: int = 257, sample_rate: int = 16000,
               fmin: float = 125.0, fmax: float = 7500.0) -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix as [n_bins, n_mels] float64 (triangles in HTK mel; DC row zero)."""
    lo, hi = hz_to_mel(fmin), hz_to_mel(fmax)
    edges = lo + (hi - lo) * np.arange(n_mels + 2, dtype=np.float64) / (n_mels + 1)
    k = np.arange(n_bins, dtype=np.float64)
    m = hz_to_mel((sample_rate / 2.0) * k / (n_bins - 1))[:, None]
    lower, center, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    w = np.maximum(0.0, np.minimum((m - lower) / (center - lower), (upper - m) / (upper - center)))
    w[0, :] = 0.0
    return w


def same_padding(n_in: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow SAME: (n_out, pad_before, pad_after); n_out = ceil(n_in / stride), the larger half after."""
    n_out = -(-n_in // stride)
    total = max((n_out - 1) * stride + kernel - n_in, 0)
    return n_out, total // 2, total - total // 2


# ------------------------------------------------------------------------------------------ model
class YAMNet:
    """The converted body: front end parameters and float64 weights from a `yamnet` model file."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict):
        arch, feat = meta["architecture"], meta["features"]
        if arch.get("type") != "yamnet" or arch.get("activation") != "relu6" or arch.get("padding") != "same":
            raise ValueError(f"not a yamnet body: {arch.get('type')}/{arch.get('activation')}/{arch.get('padding')}")
        if feat.get("type") != "yamnet_logmel" or feat.get("window") != "hann_periodic" \
                or feat.get("magnitude") is not True or feat.get("mel_htk") is not True:
            raise ValueError(f"unsupported features {feat}")
        self.meta = meta
        self.sample_rate = int(feat["sample_rate"])
        self.win = int(feat["window_length"])
        self.hop = int(feat["hop_length"])
        self.n_fft = int(feat["n_fft"])
        self.n_mels = int(feat["n_mels"])
        self.log_offset = float(feat["log_offset"])
        self.patch_frames = int(feat["patch_frames"])
        self.patch_hop_frames = int(feat["patch_hop_frames"])
        self.patch_samples = (self.patch_frames - 1) * self.hop + self.win      # 15600
        self.patch_hop = self.patch_hop_frames * self.hop                      # 7680
        clip = arch.get("input_clip")
        self.clip = (float(clip[0]), float(clip[1])) if clip is not None else (-np.inf, np.inf)
        self.window = hann_periodic(self.win)
        self.mel = mel_matrix(self.n_mels, self.n_fft // 2 + 1, self.sample_rate,
                              float(feat["fmin"]), float(feat["fmax"]))
        self.labels = list(meta["labels"])

        def deq(prefix: str) -> np.ndarray:
            q = tensors[prefix + ".weight"]
            s = tensors[prefix + ".weight_scale"].astype(np.float64)
            if q.dtype != np.int8:
                raise ValueError(f"{prefix}.weight must be I8")
            return q.astype(np.float64) * s.reshape((-1,) + (1,) * (q.ndim - 1))

        # layers: (op, kernel, stride, weights, bias); weights conv [k, k, out], depthwise [k, k, C], pointwise [in, out]
        self.layers = []
        channels = 1
        for i, l in enumerate(arch["layers"]):
            p = f"layers.{i}"
            w, b = deq(p), tensors[p + ".bias"].astype(np.float64)
            if l["op"] == "conv":
                k, out = int(l["kernel"]), int(l["filters"])
                if w.shape != (out, k, k, channels) or channels != 1:
                    raise ValueError(f"{p}.weight shape {w.shape}")
                self.layers.append(("conv", k, int(l["stride"]), np.ascontiguousarray(w[..., 0].transpose(1, 2, 0)), b))
                channels = out
            elif l["op"] == "depthwise":
                k = int(l["kernel"])
                if w.shape != (channels, k, k):
                    raise ValueError(f"{p}.weight shape {w.shape}")
                self.layers.append(("depthwise", k, int(l["stride"]), np.ascontiguousarray(w.transpose(1, 2, 0)), b))
            elif l["op"] == "pointwise":
                out = int(l["filters"])
                if w.shape != (out, channels):
                    raise ValueError(f"{p}.weight shape {w.shape}")
                self.layers.append(("pointwise", 1, 1, np.ascontiguousarray(w.T), b))
                channels = out
            else:
                raise ValueError(f"unknown op {l['op']}")
            if b.shape != (channels,):
                raise ValueError(f"{p}.bias shape {b.shape}")
        self.embedding_dim = channels
        self.cls_w = np.ascontiguousarray(deq("classifier").T)          # [1024, 521]
        self.cls_b = tensors["classifier.bias"].astype(np.float64)
        self.tensors = tensors

    @classmethod
    def from_file(cls, path=DEFAULT_MODEL) -> "YAMNet":
        tensors, md = read_safetensors(path)
        return cls(tensors, json.loads(md[METADATA_KEY]))

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], meta: dict) -> "YAMNet":
        return cls(tensors, meta)

    # -------------------------------------------------------------------------------------- front end
    def n_frames(self, n_samples: int) -> int:
        return 0 if n_samples < self.win else (n_samples - self.win) // self.hop + 1

    def frontend(self, waveform) -> np.ndarray:
        """Log-mel [frames, n_mels] (float64) of every full frame of `waveform` (no centring, no padding)."""
        y = np.asarray(waveform, dtype=np.float64).reshape(-1)
        t = self.n_frames(len(y))
        if t == 0:
            return np.zeros((0, self.n_mels))
        frames = np.lib.stride_tricks.sliding_window_view(y, self.win)[::self.hop][:t]
        spec = np.abs(np.fft.rfft(frames * self.window, n=self.n_fft, axis=1))
        return np.clip(np.log(spec @ self.mel + self.log_offset), self.clip[0], self.clip[1])

    def patches(self, n_samples: int) -> np.ndarray:
        """Start samples of the offline patch grid for a recording of n samples (always at least one)."""
        k = -(-max(0, int(n_samples) - self.patch_samples) // self.patch_hop)
        return np.arange(k + 1, dtype=np.int64) * self.patch_hop

    def padded(self, waveform) -> np.ndarray:
        """`waveform` zero-padded at the end to cover the last patch of the offline grid."""
        y = np.asarray(waveform, dtype=np.float64).reshape(-1)
        n = int(self.patches(len(y))[-1]) + self.patch_samples
        z = np.zeros(max(n, len(y)))
        z[:len(y)] = y
        return z

    # -------------------------------------------------------------------------------------- body
    def body(self, logmel_patch) -> tuple[np.ndarray, np.ndarray]:
        """(embedding [1024], scores [521]) of one log-mel patch [96, 64] (H = frames, W = mel bands)."""
        x = np.asarray(logmel_patch, dtype=np.float64)
        if x.shape != (self.patch_frames, self.n_mels):
            raise ValueError(f"patch must be [{self.patch_frames}, {self.n_mels}], got {x.shape}")
        x = x[:, :, None]
        for op, k, s, w, b in self.layers:
            if op == "pointwise":
                h, wd, c = x.shape
                y = (x.reshape(h * wd, c) @ w).reshape(h, wd, -1)
            else:
                h, wd, c = x.shape
                ho, pt, pb = same_padding(h, k, s)
                wo, pl, pr = same_padding(wd, k, s)
                xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)))
                taps = [xp[dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s, :] for dy in range(k) for dx in range(k)]
                if op == "conv":     # one input channel: im2col [ho, wo, k*k] @ [k*k, out]
                    y = np.concatenate(taps, axis=2) @ w.reshape(k * k, -1)
                else:                # depthwise: one k x k filter per channel
                    y = np.zeros((ho, wo, c))
                    for j, tap in enumerate(taps):
                        y += tap * w[j // k, j % k]
            x = np.clip(y + b, 0.0, 6.0)
        emb = x.mean(axis=(0, 1))
        scores = 1.0 / (1.0 + np.exp(-(emb @ self.cls_w + self.cls_b)))
        return emb, scores

    def embed(self, waveform) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [P, 1024], scores [P, 521]) (float64) on the offline grid of `waveform`."""
        z = self.padded(waveform)
        logmel = self.frontend(z)
        starts = self.patches(len(np.asarray(waveform).reshape(-1)))
        E = np.zeros((len(starts), self.embedding_dim))
        S = np.zeros((len(starts), len(self.cls_b)))
        for j, st in enumerate(starts):
            f0 = int(st) // self.hop
            E[j], S[j] = self.body(logmel[f0:f0 + self.patch_frames])
        return E, S

    def selftest(self) -> float:
        """Max |delta| of the file's self-test (embedding and scores)."""
        st = self.meta["selftest"]
        e, s = self.body(self.frontend(self.tensors[st["input_tensor"]]))
        return float(max(np.abs(e - self.tensors[st["embedding_tensor"]]).max(),
                         np.abs(s - np.asarray(st["expected"])).max()))


# ------------------------------------------------------------------------------------------ module API
_MODEL: YAMNet | None = None


def model() -> YAMNet:
    global _MODEL
    if _MODEL is None:
        _MODEL = YAMNet.from_file(os.environ.get("YAMNET_MODEL", DEFAULT_MODEL))
    return _MODEL


def frontend(waveform) -> np.ndarray:
    return model().frontend(waveform)


def patches(n_samples: int) -> np.ndarray:
    return model().patches(n_samples)


def body(logmel_patch):
    return model().body(logmel_patch)


def embed(waveform):
    return model().embed(waveform)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("audio", nargs="*")
    a = ap.parse_args(argv)
    m = YAMNet.from_file(a.model)
    print(f"{a.model}: self-test max |delta| {m.selftest():.3g} (tolerance {m.meta['selftest']['tolerance']})")
    x = m.frontend(m.tensors["selftest.input"])
    m.body(x)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        m.body(m.frontend(m.tensors["selftest.input"]))
    print(f"one patch (front end + body, float64): {(time.perf_counter() - t0) / reps * 1000:.1f} ms")
    if a.audio:
        import soundfile as sf
        for f in a.audio:
            y, sr = sf.read(f, dtype="float32", always_2d=True)
            if sr != m.sample_rate:
                print(f"{f}: {sr} Hz, need {m.sample_rate}", file=sys.stderr)
                continue
            E, S = m.embed(y.mean(axis=1))
            print(f)
            for st, s in zip(m.patches(len(y)), S):
                top = np.argsort(-s, kind="stable")[:a.top]
                print(f"  {st / m.sample_rate:6.2f} s  " + ", ".join(f"{m.labels[i]} {s[i]:.2f}" for i in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
