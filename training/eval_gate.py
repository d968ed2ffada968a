"""Evaluates the shipped cry gate exactly as the node runs it: `deepinfant-edge detect --json` (activity
detector + cry CRNN + episode hysteresis) over ../shared/data.

Reports clip-level recall on cries and false-positive rate on non-cry clips, per source and per non-cry
class, and false alarms per hour on one long concatenation of all non-cry clips (with 1 s of silence
between them), plus recall at -10 dB gain and with household noise mixed in at 10 dB SNR.

Caveat, printed with the results: the shipped gate was trained on all four visible folds, so these figures
are in-sample for the visible data; the grouped cross-validation in REPORT.md is the honest estimate.

    swift build -c release && python3 training/eval_gate.py [--binary .build/release/deepinfant-edge]
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extra_negatives  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


EXTRA: list[str] = []


def detect(binary: str, files: list[str], extra: list[str] | None = None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(files), 200):
        proc = subprocess.run([binary, "detect", "--json", *EXTRA, *(extra or []), *files[i:i + 200]], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            o = json.loads(line)
            out[o["file"]] = o
    return out


def class_table(by_class: dict) -> list[str]:
    """Markdown lines: non-cry classes with false positives, then the clean ones counted. by_class: {label: [hits, n]}."""
    lines = ["", "| non-cry class | clips | false positives |", "|---|---|---|"]
    for k, (h, n) in sorted(by_class.items(), key=lambda kv: -kv[1][0]):
        if h:
            lines.append(f"| {k} | {n} | {h} |")
    lines.append(f"| (all other {sum(1 for v in by_class.values() if not v[0])} classes) | | 0 |")
    return lines


def noncry_concatenation(rows: list[dict], files: list[str]) -> np.ndarray:
    """All non-cry clips of `rows` back to back, 1 s of silence after each (the false-alarm test signal)."""
    parts = []
    for r, f in zip(rows, files):
        if r["is_cry"] == "0":
            y, _ = sf.read(f, dtype="float32")
            parts += [y, np.zeros(16000, np.float32)]
    return np.concatenate(parts)


def robustness_mixes(cry_files: list[str], noise_files: list[str], rng: np.random.Generator, d: str,
                     tag: str = "") -> tuple[list[str], list[str]]:
    """Per cry clip, a copy at -10 dB gain and a copy with a random noise clip mixed in at 10 dB SNR (files in d)."""
    quiet, noisy = [], []
    for i, f in enumerate(cry_files):
        y, _ = sf.read(f, dtype="float32")
        q = str(Path(d) / f"q{tag}{i}.wav")
        sf.write(q, y * 10 ** (-10 / 20), 16000, subtype="FLOAT")
        nz, _ = sf.read(noise_files[rng.integers(len(noise_files))], dtype="float32")
        nz = np.resize(nz, len(y))
        ps, pn = np.mean(y ** 2) + 1e-12, np.mean(nz ** 2) + 1e-12
        n_ = str(Path(d) / f"n{tag}{i}.wav")
        sf.write(n_, (y + nz * np.sqrt(ps / (pn * 10 ** (10 / 10)))).astype(np.float32), 16000, subtype="FLOAT")
        quiet.append(q)
        noisy.append(n_)
    return quiet, noisy


def held_out_speech_files(d) -> tuple[dict[str, str], float]:
    """({voice: wav path in `d`}, total minutes): extra_negatives.py's held-out Asterisk voices, each as
    one file of continuous speech."""
    voices = extra_negatives.speech_streams_for_eval()
    files = {}
    for v, y in voices.items():
        files[v] = str(Path(d) / f"{v}.wav")
        sf.write(files[v], y, 16000, subtype="PCM_16")
    return files, sum(len(y) for y in voices.values()) / 16000 / 60


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "deepinfant-edge"))
    ap.add_argument("--out", default=str(ROOT / "training" / "report" / "GATE.md"))
    ap.add_argument("--detect-args", default="", help="extra arguments for detect, e.g. '--min-cry-windows 3'")
    args = ap.parse_args()
    EXTRA.extend(args.detect_args.split())
    data = Path(args.data)
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    files = [str(data / "audio" / r["path"]) for r in rows]
    res = detect(args.binary, files)
    by_source = collections.defaultdict(lambda: [0, 0])
    by_class = collections.defaultdict(lambda: [0, 0])
    cries = [0, 0]
    neg = [0, 0]
    errors = 0
    for r, f in zip(rows, files):
        o = res.get(f, {})
        if "error" in o or not o:
            errors += 1
            continue
        hit = bool(o["cry"])
        key = r["source"]
        by_source[key][0] += hit
        by_source[key][1] += 1
        if r["is_cry"] == "1":
            cries[0] += hit
            cries[1] += 1
        else:
            neg[0] += hit
            neg[1] += 1
            by_class[r["label"]][0] += hit
            by_class[r["label"]][1] += 1

    lines = ["# Cry gate evaluation (`training/eval_gate.py`)", "",
             "The shipped gate run exactly as on a node (`deepinfant-edge detect`: activity detector, cry CRNN, episode "
             "hysteresis) over every clip of the visible data. **In-sample**: the shipped cry model was trained on these "
             "folds, so these figures are optimistic; the honest estimate is the grouped CV in REPORT.md.", "",
             f"Gate settings: defaults of `GateSettings`{(' + ' + ' '.join(EXTRA)) if EXTRA else ''}.", "",
             f"- clip-level recall on cries: **{cries[0] / max(cries[1], 1):.3f}** ({cries[0]}/{cries[1]})",
             f"- false-positive rate on non-cry clips: **{neg[0] / max(neg[1], 1):.3f}** ({neg[0]}/{neg[1]})",
             f"- unreadable files: {errors}", "", "| source | clips | flagged as cry |", "|---|---|---|"]
    for k, (h, n) in sorted(by_source.items()):
        lines.append(f"| {k} | {n} | {h} ({h / n:.3f}) |")
    lines += class_table(by_class)

    with tempfile.TemporaryDirectory() as d:
        # False alarms per hour: all non-cry clips back to back, 1 s of silence between them.
        long = noncry_concatenation(rows, files)
        hours = len(long) / 16000 / 3600
        p = str(Path(d) / "noncry.wav")
        sf.write(p, long, 16000, subtype="PCM_16")
        o = detect(args.binary, [p])[p]
        alarms = len(o.get("segments", []))
        lines += ["", f"- false alarms on {hours * 60:.1f} min of non-cry audio played back to back: **{alarms}** "
                      f"({alarms / hours:.1f} per hour)"]
        # Robustness: -10 dB gain, and household noise (non-cry clips) at 10 dB SNR.
        rng = np.random.default_rng(0)
        cry_files = [f for r, f in zip(rows, files) if r["is_cry"] == "1"]
        noise_files = [f for r, f in zip(rows, files) if r["is_cry"] == "0" and r["source"] == "esc50"]
        quiet, noisy = robustness_mixes(cry_files, noise_files, rng, d)
        rq = detect(args.binary, quiet)
        rn = detect(args.binary, noisy)
        rec_q = np.mean([bool(rq[q].get("cry")) for q in quiet])
        rec_n = np.mean([bool(rn[q].get("cry")) for q in noisy])
        lines += [f"- recall at -10 dB gain: **{rec_q:.3f}**; with household noise (ESC-50 non-cry clips) at 10 dB SNR: "
                  f"**{rec_n:.3f}**"]
        # Held-out continuous speech (not in any training set, so not in-sample): extra_negatives.py's Asterisk voices.
        vf, minutes = held_out_speech_files(d)
        ro = detect(args.binary, list(vf.values()))
        n = {v: len(ro[f].get("segments", [])) for v, f in vf.items()}
        lines += [f"- false alarms on {minutes:.0f} min of held-out continuous speech (Asterisk prompts, 5 voice sets, "
                  f"never trained on): **{sum(n.values())}** (" + ", ".join(f"{v.removeprefix('asterisk_')} {k}" for v, k in n.items())
                  + ")", ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
