"""Honest gate-level estimate of a cry-detector recipe: grouped cross-validation through the real gate.

For each fold k the cry model of the CV run (trained without fold k) is exported to a model file and
`deepinfant-edge detect` runs the whole gate (activity detector, cry CRNN, episode hysteresis) over the clips
of fold k only, with the threshold chosen on the out-of-fold predictions of the *other three* folds (highest
threshold keeping their clip recall >= 0.975). False alarms per hour: fold k's non-cry clips back to back
(1 s silence between them) through fold k's gate. Nothing here sees the test fold before it is scored.
Continuous speech no recipe trains on: 20 min of Asterisk's telephony prompts (5 voice sets, 4 languages, see
extra_negatives.py) back to back through every fold's gate.

    swift build -c release && python3 training/eval_gate_cv.py cry_cv [--min-cry-windows 1,2,3]
    python3 training/eval_gate_cv.py cry_cv --held-out-speech-only   # adds that one figure to gate_cv.json

Writes training/report/GATE_CV_<run>.md.
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
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import features as fx  # noqa: E402
import metrics as M  # noqa: E402
import train as T  # noqa: E402
from eval_gate import class_table, held_out_speech_files, noncry_concatenation, robustness_mixes  # noqa: E402
from export_model import export_model  # noqa: E402

ROOT = HERE.parent


def detect(binary, files, extra):
    out = {}
    for i in range(0, len(files), 200):
        proc = subprocess.run([binary, "detect", "--json", *extra, *files[i:i + 200]], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            o = json.loads(line)
            out[o["file"]] = o
    return out


def fold_thresholds(res):
    """Per test fold: the threshold chosen on the other folds' OOF predictions (recall >= 0.975)."""
    oof = res["oof"]
    return M.cross_fit_thresholds(M.cry_scores(oof), np.array([o["y"] for o in oof]),
                                  np.array([o["fold"] for o in oof]))


def held_out_summary(held_out: dict, minutes: float) -> dict:
    """{fold: {voice: alarms}} over `minutes` of held-out speech per fold gate -> the pooled figures."""
    n = sum(sum(v.values()) for v in held_out.values())
    voices = next(iter(held_out.values()))
    return dict(false_alarms=int(n), minutes=float(minutes * len(held_out)), hours=float(minutes * len(held_out) / 60),
                folds=len(held_out),
                false_alarms_per_hour=float(n / (minutes * len(held_out) / 60)),
                per_voice={v: int(sum(h[v] for h in held_out.values())) for v in voices})


def held_out_sentence(hs: dict) -> str:
    return (f"Held-out continuous speech (2 cry windows; {hs['minutes'] / hs['folds']:.0f} min of Asterisk prompts, 5 voice sets, "
            f"through each of the {hs['folds']} fold gates; no recipe trains on it): **{hs['false_alarms']} false alarms in "
            f"{hs['minutes']:.0f} min** ({hs['false_alarms_per_hour']:.1f} per hour; per voice "
            + ", ".join(f"{v.removeprefix('asterisk_')}: {n}" for v, n in hs["per_voice"].items()) + ").")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="CV run under training/runs (e.g. cry_cv)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "deepinfant-edge"))
    ap.add_argument("--min-cry-windows", default="2", help="comma list; 2 is the gate default")
    ap.add_argument("--held-out-speech-only", action="store_true",
                    help="measure only the false alarms on held-out continuous speech and add them to gate_cv.json")
    ap.add_argument("--tag", help="suffix for the outputs (GATE_CV_<run>_<tag>.md, gate_cv_<tag>.json): "
                                  "to compare gate variants without overwriting the reference")
    a = ap.parse_args()
    suffix = f"_{a.tag}" if a.tag else ""
    data = Path(a.data).resolve()
    res = json.loads((T.RUNS / a.run / "result.json").read_text())
    cfg = res["cfg"]
    thr = fold_thresholds(res)
    D = T.Data(data)
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    mins = [int(x) for x in a.min_cry_windows.split(",")]
    hits = {m: {} for m in mins}
    alarms = {m: {} for m in mins}
    hours = {}
    speech_hours, speech_alarms = {}, {}
    robust = {"quiet": [], "noisy": []}
    held_out = {}
    with tempfile.TemporaryDirectory() as d:
        voice_files, voice_minutes = held_out_speech_files(d)
        for k in T.FOLDS:
            tr = D.cry_training_items([f for f in T.FOLDS if f != k], cfg)
            mean, std = T.norm_stats(tr)  # exactly what train_model computed for this fold
            model = T.make_model(2, cfg.get("arch"))
            model.load_state_dict(torch.load(T.RUNS / a.run / f"fold{k}.pt", weights_only=True))
            model.eval()
            path = Path(d) / f"cry_fold{k}.safetensors"
            feats = dict(fx.FEATURES, norm_mean=mean, norm_std=std)
            st = D.clean[next(r["path"] for r in D.rows if r["source"] == "donateacry")][:T.WIN]
            export_model(model, path, name=f"cv-{a.run}-fold{k}", version="0.0.1", task="cry", labels=T.CRY_LABELS,
                         features=feats, window=dict(seconds=3.0, hop_seconds=1.0, frames=T.WIN, hop_frames=T.HOP),
                         training=dict(note=f"CV fold model, test fold {k}"), calibration=None, selftest_input=st)
            T.add_metadata(path, dict(gate=dict(threshold=thr[k])))
            extra = ["--cry-model", str(path), "--threshold", f"{thr[k]:.6f}", "--min-cry-windows", "2"]
            out = detect(a.binary, list(voice_files.values()), extra)
            held_out[k] = {v: len(out[f].get("segments", [])) for v, f in voice_files.items()}
            print(f"fold {k}: held-out speech alarms {held_out[k]}", flush=True)
            if a.held_out_speech_only:
                continue
            fold_rows = [r for r in rows if int(r["fold"]) == k]
            files = [str(data / "audio" / r["path"]) for r in fold_rows]
            long = noncry_concatenation(fold_rows, files)
            hours[k] = len(long) / 16000 / 3600
            lp = str(Path(d) / f"noncry_fold{k}.wav")
            sf.write(lp, long, 16000, subtype="PCM_16")
            for m in mins:
                extra = ["--cry-model", str(path), "--threshold", f"{thr[k]:.6f}", "--min-cry-windows", str(m)]
                out = detect(a.binary, files, extra)
                for r, f in zip(fold_rows, files):
                    hits[m][r["path"]] = bool(out.get(f, {}).get("cry"))
                alarms[m][k] = len(detect(a.binary, [lp], extra)[lp].get("segments", []))
            # robustness (default rule, 2 cry windows): the fold's cries at -10 dB, and with a non-cry ESC-50 clip
            # of the same fold mixed in at 10 dB SNR
            rng = np.random.default_rng(k)
            noise = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "0" and r["source"] == "esc50"]
            cries = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "1"]
            quiet, noisy = robustness_mixes(cries, noise, rng, d, tag=f"{k}_")
            extra = ["--cry-model", str(path), "--threshold", f"{thr[k]:.6f}", "--min-cry-windows", "2"]
            rq, rn = detect(a.binary, quiet, extra), detect(a.binary, noisy, extra)
            # continuous adult speech (people talking, a TV): the fold's speech clips back to back without gaps,
            # in a seeded random order. The false-alarm signal above puts 1 s of silence after every clip, so
            # FSDD's half-second digits never form the long stretches of speech a nursery hears.
            sp = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "0" and r["label"] == "speech"]
            order = np.random.default_rng(100 + k).permutation(len(sp))
            speech = np.concatenate([sf.read(sp[i], dtype="float32")[0] for i in order])
            spp = str(Path(d) / f"speech_fold{k}.wav")
            sf.write(spp, speech, 16000, subtype="PCM_16")
            speech_hours[k] = len(speech) / 16000 / 3600
            speech_alarms[k] = len(detect(a.binary, [spp], extra)[spp].get("segments", []))
            robust["quiet"] += [bool(rq.get(q, {}).get("cry")) for q in quiet]
            robust["noisy"] += [bool(rn.get(q, {}).get("cry")) for q in noisy]
            print(f"fold {k}: threshold {thr[k]:.4f}, " + ", ".join(
                f"min {m}: {alarms[m][k]} alarms" for m in mins), flush=True)

    hs = held_out_summary(held_out, voice_minutes)
    if a.held_out_speech_only:
        p = T.RUNS / a.run / f"gate_cv{suffix}.json"
        r = json.loads(p.read_text())
        r["held_out_speech"] = hs
        T.save(p, r)
        print(json.dumps(hs))
        return
    lines = [f"# Gate-level grouped CV of `{a.run}`{' (' + a.tag + ')' if a.tag else ''} (`training/eval_gate_cv.py`)", "",
             "Each fold's clips run through the real gate (`deepinfant-edge detect`: activity detector, cry CRNN, "
             "episode hysteresis) with the cry model trained without that fold and the threshold chosen on the other "
             "folds' out-of-fold predictions: an honest estimate, unlike GATE.md (in-sample).", "",
             "| min cry windows | recall on cries (folds mean ± std) | pooled recall | FPR on non-cry (folds mean ± std) | pooled FPR | false alarms / hour (pooled) |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for m in mins:
        rec, fpr = [], []
        for k in T.FOLDS:
            c = [hits[m][r["path"]] for r in rows if int(r["fold"]) == k and r["is_cry"] == "1"]
            n = [hits[m][r["path"]] for r in rows if int(r["fold"]) == k and r["is_cry"] == "0"]
            rec.append(np.mean(c))
            fpr.append(np.mean(n))
        pc = np.mean([hits[m][r["path"]] for r in rows if r["is_cry"] == "1"])
        pn = np.mean([hits[m][r["path"]] for r in rows if r["is_cry"] == "0"])
        fa = sum(alarms[m].values()) / sum(hours.values())
        summary[m] = dict(recall=float(pc), fpr=float(pn), fold_recall=[float(x) for x in rec],
                          fold_fpr=[float(x) for x in fpr], false_alarms=int(sum(alarms[m].values())),
                          hours=float(sum(hours.values())), false_alarms_per_hour=float(fa))
        lines.append(f"| {m} | {np.mean(rec):.3f} ± {np.std(rec, ddof=1):.3f} | {pc:.3f} | {np.mean(fpr):.3f} ± "
                     f"{np.std(fpr, ddof=1):.3f} | {pn:.3f} | {fa:.1f} ({sum(alarms[m].values())} in "
                     f"{sum(hours.values()) * 60:.0f} min) |")
    sph = sum(speech_hours.values())
    lines += ["", f"Continuous speech (2 cry windows; each fold's speech clips back to back, no gaps): "
              f"**{sum(speech_alarms.values())} false alarms in {sph * 60:.1f} min** ({sum(speech_alarms.values()) / sph:.1f} per hour; "
              "per fold " + ", ".join(f"{k}: {speech_alarms[k]}" for k in T.FOLDS) + ")."]
    lines += ["", held_out_sentence(hs)]
    lines += ["", f"Robustness (2 cry windows): recall at -10 dB gain **{np.mean(robust['quiet']):.3f}**, with a non-cry "
              f"ESC-50 clip of the same fold mixed in at 10 dB SNR **{np.mean(robust['noisy']):.3f}** "
              f"({len(robust['quiet'])} cries)."]
    m = 2 if 2 in mins else mins[0]
    by_src = collections.defaultdict(lambda: [0, 0])
    by_cls = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        h = hits[m][r["path"]]
        by_src[(r["source"], r["is_cry"])][0] += h
        by_src[(r["source"], r["is_cry"])][1] += 1
        if r["is_cry"] == "0":
            by_cls[r["label"]][0] += h
            by_cls[r["label"]][1] += 1
    lines += ["", f"Thresholds per test fold: " + ", ".join(f"{k}: {thr[k]:.3f}" for k in T.FOLDS) + ".", "",
              f"Per source (min cry windows {m}):", "", "| source | cry? | clips | flagged |", "|---|---|---|---|"]
    for (s, c), (h, n) in sorted(by_src.items()):
        lines.append(f"| {s} | {'cry' if c == '1' else 'not cry'} | {n} | {h} ({h / n:.3f}) |")
    lines += class_table(by_cls)
    missed = [r["path"] for r in rows if r["is_cry"] == "1" and not hits[m][r["path"]]]
    lines += ["", f"Missed cries ({len(missed)}): " + ", ".join(f"`{p}`" for p in missed), ""]
    T.save(T.RUNS / a.run / f"gate_cv{suffix}.json", dict(run=a.run, thresholds={str(k): v for k, v in thr.items()},
                                                  min_cry_windows={str(k): v for k, v in summary.items()},
                                                  missed=missed,
                                                  false_positives=[r["path"] for r in rows if r["is_cry"] == "0" and hits[m][r["path"]]],
                                                  speech=dict(false_alarms=int(sum(speech_alarms.values())), hours=float(sph),
                                                              false_alarms_per_hour=float(sum(speech_alarms.values()) / sph)),
                                                  held_out_speech=hs,
                                                  robustness=dict(recall_minus_10_db=float(np.mean(robust["quiet"])),
                                                                  recall_noise_10_db_snr=float(np.mean(robust["noisy"])))))
    out = ROOT / "training" / "report" / f"GATE_CV_{a.run}{suffix}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
