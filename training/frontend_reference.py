"""What the reason model (and the CRNN cry detector) expect, in NumPy only: the executable definition of the
node's front end for app authors who run the exported models (training/export.py) elsewhere.

    python3 training/frontend_reference.py AUDIO.flac [--model deepinfant-reason.safetensors] [--onnx reason.onnx]

prints the log-mel shape and the analysis windows, and with `--onnx` (the only place that needs more than
NumPy + soundfile: `onnxruntime`) the node's answer for the recording.

The chain, step by step (parameters from the model file's `features` / `window`; the shipped values):

1. Audio: 16 kHz mono float in [-1, 1] (the node resamples other rates; this reference refuses them).
2. STFT, librosa's `center=True, pad_mode="constant"`: n_fft/2 = 1024 zeros before and after the signal;
   frame t covers padded samples [512 t, 512 t + 2048), t = 0 ... len // 512 (1 + len // 512 frames, one every
   32 ms); periodic Hann window `0.5 - 0.5 cos(2 pi n / 2048)`; real FFT; power |X[k]|^2, k = 0...1024.
3. Mel: librosa `filters.mel(sr=16000, n_fft=2048, n_mels=64, fmin=0, fmax=4000, htk=False, norm="slaney")`
   (Slaney mel scale: linear below 1 kHz, log above; triangles normalised to unit area), weights float32.
4. dB: `10 log10(max(1e-10, mel_power)) - 10 log10(max(1e-10, 1.0))` (librosa `power_to_db(ref=1.0,
   amin=1e-10, top_db=None)`; mel power rounded to float32 first). Layout [frames, 64]. Silence is -100 dB.
5. Normalise: `(logmel_db - norm_mean) / norm_std` (the model file's `features.norm_mean` / `norm_std`; the
   reason model: -22.312 / 19.376), transpose to [1, 1, 64, frames]: the exported model's `logmel` input.
6. Windows: 94 frames (3 s) starting at frame 0 and every 31 frames (~1 s) while they fit, plus one aligned
   to the end when the last one stops short; a recording under 94 frames is one shorter window (at least 8
   frames, ~0.26 s; fewer is refused).
7. Aggregation: `softmax(mean over windows of log p)` (`aggregation: mean_log_prob`).
8. Unknown rule (the cry gate's episodes): the top label when its probability >= 0.45 (`gate.reason_min_confidence`),
   else `unknown`. `deepinfant-edge classify` prints the top label without that rule.

`training/test_frontend_reference.py` checks steps 2-4 against `deepinfant-edge features` on real recordings
(<= 0.01 dB on every bin above -80 dB) and steps 5-8 with the ONNX export against `deepinfant-edge classify`.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SAMPLE_RATE = 16_000
REASON_MIN_CONFIDENCE = 0.45
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FrontEnd:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float = 4000.0
    db_ref: float = 1.0
    db_amin: float = 1e-10
    norm_mean: float = -22.31210708618164     # the shipped reason model's
    norm_std: float = 19.3763427734375
    window_frames: int = 94
    hop_frames: int = 31
    min_frames: int = 8                       # 2 ** conv blocks

    @staticmethod
    def from_model(path: str | Path) -> "FrontEnd":
        """The parameters of a CRNN model file (.safetensors: 8-byte header length, JSON header)."""
        raw = Path(path).read_bytes()
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["deepinfant"])
        f, w, a = meta["features"], meta["window"], meta["architecture"]
        if a["type"] != "crnn":
            raise ValueError("not a CRNN model file")
        for key, want in (("power", 2.0), ("center", True), ("pad_mode", "constant"), ("window", "hann"),
                          ("mel_htk", False), ("mel_norm", "slaney"), ("db_top_db", None)):
            if f.get(key, want) != want:
                raise ValueError(f"features.{key} = {f.get(key)!r}: this reference implements {want!r} only")
        return FrontEnd(sample_rate=f["sample_rate"], n_fft=f["n_fft"], hop_length=f["hop_length"], n_mels=f["n_mels"],
                        fmin=f["fmin"], fmax=f["fmax"], db_ref=f["db_ref"], db_amin=f["db_amin"],
                        norm_mean=f["norm_mean"], norm_std=f["norm_std"], window_frames=w["frames"],
                        hop_frames=w["hop_frames"], min_frames=2 ** len(a["conv_channels"]))


def read_audio(path: str | Path) -> np.ndarray:
    """16 kHz audio as float32 mono (channels averaged)."""
    import soundfile as sf
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: {sr} Hz; resample to 16 kHz first (the node uses libsamplerate)")
    return y.mean(axis=1).astype(np.float32)


def hz_to_mel(f):
    """Slaney mel scale (librosa `hz_to_mel(htk=False)`)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """[n_mels, 1 + n_fft/2] float32, librosa `filters.mel(..., htk=False, norm="slaney")` step by step."""
    n_bins = fe.n_fft // 2 + 1
    fftfreqs = np.arange(n_bins, dtype=np.float64) * fe.sample_rate / fe.n_fft
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fe.fmin), hz_to_mel(fe.fmax), fe.n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((fe.n_mels, n_bins), dtype=np.float32)
    for i in range(fe.n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:fe.n_mels + 2] - mel_f[:fe.n_mels])
    weights *= enorm[:, None]          # in place on the float32 array, as librosa does
    return weights


def logmel(y: np.ndarray, fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """Log-mel dB `[frames, n_mels]` float32 of 16 kHz samples: what `deepinfant-edge features` writes."""
    y = np.asarray(y, dtype=np.float32)
    n, hop = fe.n_fft, fe.hop_length
    frames = 1 + len(y) // hop
    padded = np.zeros(frames * hop + n, dtype=np.float64)
    padded[n // 2:n // 2 + len(y)] = y
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)          # periodic Hann
    mel = mel_filterbank(fe).astype(np.float64)
    out = np.empty((frames, fe.n_mels), dtype=np.float32)
    offset = 10 * math.log10(max(fe.db_amin, fe.db_ref))
    for s in range(0, frames, 256):                                   # blocks of frames: bounded memory
        idx = np.arange(s, min(frames, s + 256))
        block = padded[idx[:, None] * hop + np.arange(n)[None, :]] * window
        spec = np.fft.rfft(block, axis=1)
        power = spec.real ** 2 + spec.imag ** 2
        melpow = (power @ mel.T).astype(np.float32)
        out[idx] = (10 * np.log10(np.maximum(np.float32(fe.db_amin), melpow)) - offset).astype(np.float32)
    return out


def normalise(db: np.ndarray, fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """`[frames, n_mels]` dB -> the model input `[1, 1, n_mels, frames]` float32."""
    x = (np.asarray(db, np.float32) - np.float32(fe.norm_mean)) / np.float32(fe.norm_std)
    return np.ascontiguousarray(x.T[None, None], dtype=np.float32)


def window_starts(frames: int, fe: FrontEnd = FrontEnd()) -> list[int]:
    """Start frames of the analysis windows of a recording (`RecordingClassifier.windowStarts`)."""
    w, hop = fe.window_frames, fe.hop_frames
    if frames < fe.min_frames:
        raise ValueError(f"{frames} frames: a recording needs at least {fe.min_frames} (~0.26 s)")
    if frames <= w:
        return [0]
    starts = list(range(0, frames - w + 1, hop))
    if starts[-1] + w < frames:
        starts.append(frames - w)
    return starts


def windows(db: np.ndarray, fe: FrontEnd = FrontEnd()) -> list[np.ndarray]:
    """The normalised model inputs `[1, 1, n_mels, <= window_frames]` of a recording's log-mel."""
    return [normalise(db[s:s + fe.window_frames], fe) for s in window_starts(len(db), fe)]


def aggregate(window_probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """`softmax(mean over windows of log p)` (`mean_log_prob`)."""
    logs = np.log(np.maximum(np.asarray(window_probabilities, np.float64).reshape(len(window_probabilities), -1), 1e-38))
    m = logs.mean(axis=0)
    e = np.exp(m - m.max())
    return e / e.sum()


def reason(probabilities: np.ndarray, labels: Sequence[str], min_confidence: float = REASON_MIN_CONFIDENCE) -> str:
    """The episode's reason: the top label when its probability reaches `min_confidence`, else `unknown`."""
    best = int(np.argmax(probabilities))
    return labels[best] if probabilities[best] >= min_confidence else UNKNOWN


def classify(y: np.ndarray, run_window: Callable[[np.ndarray], np.ndarray], fe: FrontEnd = FrontEnd()) -> np.ndarray:
    """Recording probabilities with any runner of the exported model (`[1,1,n_mels,T]` -> `[1, n_classes]`)."""
    return aggregate([np.asarray(run_window(x), np.float64).reshape(-1) for x in windows(logmel(y, fe), fe)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="The reason model's front end (NumPy reference).")
    ap.add_argument("audio", nargs="+")
    ap.add_argument("--model", help="CRNN model file for the parameters (default: the shipped reason model's values)")
    ap.add_argument("--onnx", help="exported model (training/export.py) to classify with (needs onnxruntime)")
    ap.add_argument("--labels", default="belly_pain,burping,discomfort,hungry,tired")
    args = ap.parse_args(argv)
    fe = FrontEnd.from_model(args.model) if args.model else FrontEnd()
    labels = args.labels.split(",")
    run = None
    if args.onnx:
        import onnxruntime as ort
        sess = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
        props = sess.get_modelmeta().custom_metadata_map
        labels = json.loads(props.get("labels", json.dumps(labels)))
        run = lambda x: sess.run(None, {"logmel": x})[0]
    for path in args.audio:
        y = read_audio(path)
        db = logmel(y, fe)
        starts = window_starts(len(db), fe)
        line = f"{path}: {len(y) / fe.sample_rate:.2f} s, {len(db)} frames x {fe.n_mels} mels, windows at {starts}"
        if run is not None:
            p = aggregate([run(normalise(db[s:s + fe.window_frames], fe)) for s in starts])
            probs = ", ".join(f"{l} {v:.4f}" for l, v in zip(labels, p))
            line += f"\n  {reason(p, labels)} [{probs}]"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
