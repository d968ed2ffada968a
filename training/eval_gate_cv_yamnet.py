"""Gate-level grouped CV of a YAMNet cry-head run through the real Swift gate (eval_gate_cv.py for head runs).

training/yamnet_head.py writes, per test fold k, `training/runs/yamnet_head_cv/fold{k}.safetensors` (a cry head
trained without fold k) and its thresholds (chosen by inner CV on the other folds) in `result.json`. This runs
`deepinfant-edge detect --json --cry-model fold{k}.safetensors --threshold T --min-cry-patches M` (the whole gate:
activity detector, YAMNet body + head every 0.48 s, episode hysteresis) over fold k's clips only, the fold's
non-cry clips back to back with 1 s of silence (false alarms per hour), its speech clips back to back, the 20 min
of held-out Asterisk voices, and the robustness mixes (-10 dB gain; a same-fold ESC-50 clip at 10 dB SNR), exactly
as eval_gate_cv.py does for the CRNN recipes. Recall is given on the clean cries (donateacry + ESC-50
crying_baby: the 398 the CRNN figures count) and per source (donateacry_raw apart).

    swift build -c release && python3 training/eval_gate_cv_yamnet.py [--run training/runs/yamnet_head_cv]
        [--min-cry-patches 1,2] [--yamnet Sources/Inference/Resources/yamnet.safetensors]

Writes training/report/GATE_CV_<run name>.md and <run>/gate_cv.json.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eval_gate import class_table, held_out_speech_files, noncry_concatenation, robustness_mixes  # noqa: E402
from eval_gate_cv import detect, held_out_summary, held_out_sentence  # noqa: E402

ROOT = HERE.parent
FOLDS = (1, 2, 3, 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=str(HERE / "runs" / "yamnet_head_cv"), help="head run folder (result.json, fold*.safetensors)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "deepinfant-edge"))
    ap.add_argument("--yamnet", help="YAMNet body file (default: the binary's embedded one)")
    ap.add_argument("--min-cry-patches", default="1,2", help="comma list")
    ap.add_argument("--tag", help="suffix for the outputs")
    a = ap.parse_args()
    run = Path(a.run).resolve()
    suffix = f"_{a.tag}" if a.tag else ""
    res = json.loads((run / "result.json").read_text())
    data = Path(a.data).resolve()
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    mins = [int(x) for x in a.min_cry_patches.split(",")]
    default_m = int(res.get("min_cry_patches", mins[-1]))
    m_main = default_m if default_m in mins else mins[-1]
    body = ["--yamnet", a.yamnet] if a.yamnet else []

    def args(k, m):
        t = res["folds"][str(k)]["thresholds"][str(m)]
        return [*body, "--cry-model", str(run / f"fold{k}.safetensors"), "--threshold", f"{t:.6f}", "--min-cry-patches", str(m)]

    hits = {m: {} for m in mins}
    alarms = {m: {} for m in mins}
    hours, speech_hours, speech_alarms, held_out = {}, {}, {}, {}
    robust = {"quiet": [], "noisy": [], "quiet_clean": [], "noisy_clean": []}
    with tempfile.TemporaryDirectory() as d:
        voice_files, voice_minutes = held_out_speech_files(d)
        for k in FOLDS:
            out = detect(a.binary, list(voice_files.values()), args(k, m_main))
            held_out[k] = {v: len(out[f].get("segments", [])) for v, f in voice_files.items()}
            fold_rows = [r for r in rows if int(r["fold"]) == k]
            files = [str(data / "audio" / r["path"]) for r in fold_rows]
            long = noncry_concatenation(fold_rows, files)
            hours[k] = len(long) / 16000 / 3600
            lp = str(Path(d) / f"noncry_fold{k}.wav")
            sf.write(lp, long, 16000, subtype="PCM_16")
            for m in mins:
                out = detect(a.binary, files, args(k, m))
                missing = [f for f in files if f not in out or "error" in out[f]]
                if missing:
                    raise SystemExit(f"detect failed on {len(missing)} files, e.g. {missing[0]}: {out.get(missing[0])}")
                for r, f in zip(fold_rows, files):
                    hits[m][r["path"]] = bool(out[f].get("cry"))
                alarms[m][k] = len(detect(a.binary, [lp], args(k, m))[lp].get("segments", []))
            rng = np.random.default_rng(k)
            noise = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "0" and r["source"] == "esc50"]
            cry_rows = [r for r in fold_rows if r["is_cry"] == "1"]
            cries = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "1"]
            quiet, noisy = robustness_mixes(cries, noise, rng, d, tag=f"{k}_")
            rq, rn = detect(a.binary, quiet, args(k, m_main)), detect(a.binary, noisy, args(k, m_main))
            for r, q, n_ in zip(cry_rows, quiet, noisy):
                robust["quiet"].append(bool(rq.get(q, {}).get("cry")))
                robust["noisy"].append(bool(rn.get(n_, {}).get("cry")))
                if r["source"] != "donateacry_raw":
                    robust["quiet_clean"].append(robust["quiet"][-1])
                    robust["noisy_clean"].append(robust["noisy"][-1])
            sp = [f for r, f in zip(fold_rows, files) if r["is_cry"] == "0" and r["label"] == "speech"]
            order = np.random.default_rng(100 + k).permutation(len(sp))
            speech = np.concatenate([sf.read(sp[i], dtype="float32")[0] for i in order])
            spp = str(Path(d) / f"speech_fold{k}.wav")
            sf.write(spp, speech, 16000, subtype="PCM_16")
            speech_hours[k] = len(speech) / 16000 / 3600
            speech_alarms[k] = len(detect(a.binary, [spp], args(k, m_main))[spp].get("segments", []))
            print(f"fold {k}: " + ", ".join(f"min {m}: {alarms[m][k]} alarms" for m in mins)
                  + f"; held-out speech {held_out[k]}", flush=True)

    hs = held_out_summary(held_out, voice_minutes)
    clean = [r for r in rows if r["is_cry"] == "1" and r["source"] != "donateacry_raw"]
    raw = [r for r in rows if r["source"] == "donateacry_raw"]
    neg = [r for r in rows if r["is_cry"] == "0"]
    lines = [f"# Gate-level grouped CV of the YAMNet cry head `{run.name}`{' (' + a.tag + ')' if a.tag else ''} "
             f"(`training/eval_gate_cv_yamnet.py`)", "",
             f"Recipe `{res.get('recipe')}`. Each fold's clips through the real gate (`deepinfant-edge detect`: activity "
             "detector, YAMNet body + the head trained without that fold, threshold from the other folds, episode "
             "hysteresis).", "",
             "| min cry patches | recall, clean cries (folds mean ± std) | pooled | recall donateacry_raw | FPR (folds mean ± std) | pooled FPR | false alarms / hour |",
             "|---|---|---|---|---|---|---|"]
    summary = {}
    for m in mins:
        rec = [np.mean([hits[m][r["path"]] for r in clean if int(r["fold"]) == k]) for k in FOLDS]
        fpr = [np.mean([hits[m][r["path"]] for r in neg if int(r["fold"]) == k]) for k in FOLDS]
        pc = np.mean([hits[m][r["path"]] for r in clean])
        pr = np.mean([hits[m][r["path"]] for r in raw]) if raw else float("nan")
        pn = np.mean([hits[m][r["path"]] for r in neg])
        fa = sum(alarms[m].values()) / sum(hours.values())
        summary[m] = dict(recall_clean=float(pc), recall_raw=float(pr), fpr=float(pn), fold_recall_clean=[float(x) for x in rec],
                          fold_fpr=[float(x) for x in fpr], false_alarms=int(sum(alarms[m].values())),
                          hours=float(sum(hours.values())), false_alarms_per_hour=float(fa))
        lines.append(f"| {m} | {np.mean(rec):.3f} ± {np.std(rec, ddof=1):.3f} | {pc:.3f} | {pr:.3f} | {np.mean(fpr):.3f} ± "
                     f"{np.std(fpr, ddof=1):.3f} | {pn:.3f} | {fa:.1f} ({sum(alarms[m].values())} in {sum(hours.values()) * 60:.0f} min) |")
    sph = sum(speech_hours.values())
    lines += ["", f"Continuous speech ({m_main} cry patches; each fold's speech clips back to back): "
              f"**{sum(speech_alarms.values())} false alarms in {sph * 60:.1f} min**.",
              "", held_out_sentence(hs).replace("(2 cry windows;", f"({m_main} cry patches;"),
              "", f"Robustness ({m_main} cry patches): recall at -10 dB gain **{np.mean(robust['quiet_clean']):.3f}** "
              f"(clean cries; all cries {np.mean(robust['quiet']):.3f}), with a non-cry ESC-50 clip of the same fold at 10 dB SNR "
              f"**{np.mean(robust['noisy_clean']):.3f}** (all {np.mean(robust['noisy']):.3f})."]
    by_src = collections.defaultdict(lambda: [0, 0])
    by_cls = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        h = hits[m_main][r["path"]]
        by_src[(r["source"], r["is_cry"])][0] += h
        by_src[(r["source"], r["is_cry"])][1] += 1
        if r["is_cry"] == "0":
            by_cls[r["label"]][0] += h
            by_cls[r["label"]][1] += 1
    lines += ["", "Thresholds per test fold: " + ", ".join(f"{k}: {res['folds'][str(k)]['thresholds'][str(m_main)]:.3f}" for k in FOLDS)
              + ".", "", f"Per source (min cry patches {m_main}):", "", "| source | cry? | clips | flagged |", "|---|---|---|---|"]
    for (s, c), (h, n) in sorted(by_src.items()):
        lines.append(f"| {s} | {'cry' if c == '1' else 'not cry'} | {n} | {h} ({h / n:.3f}) |")
    lines += class_table(by_cls)
    missed = [r["path"] for r in clean if not hits[m_main][r["path"]]]
    lines += ["", f"Missed clean cries ({len(missed)}): " + ", ".join(f"`{p}`" for p in missed), ""]
    (run / f"gate_cv{suffix}.json").write_text(json.dumps(dict(
        run=str(run), recipe=res.get("recipe"), min_cry_patches={str(k): v for k, v in summary.items()}, missed_clean=missed,
        false_positives=[r["path"] for r in neg if hits[m_main][r["path"]]],
        speech=dict(false_alarms=int(sum(speech_alarms.values())), hours=float(sph)), held_out_speech=hs,
        robustness=dict(recall_minus_10_db_clean=float(np.mean(robust["quiet_clean"])),
                        recall_noise_10_db_snr_clean=float(np.mean(robust["noisy_clean"])),
                        recall_minus_10_db=float(np.mean(robust["quiet"])),
                        recall_noise_10_db_snr=float(np.mean(robust["noisy"])))), indent=1))
    out = ROOT / "training" / "report" / f"GATE_CV_{run.name}{suffix}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
