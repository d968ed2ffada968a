"""Write training/report/REPORT.md and the confusion-matrix PNGs from the results in training/runs/.

    python3 training/report.py          # after `python3 training/train.py --all` (which calls this at the end)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import metrics as M  # noqa: E402

RUNS = HERE / "runs"
OUT = HERE / "report"
REASONS = M.REASONS


def load(name):
    p = RUNS / name / "result.json"
    return json.loads(p.read_text()) if p.exists() else None


def fmt(d, pct=False):
    if d is None:
        return "n/a"
    return f"{d['mean']:.3f} ± {d['std']:.3f}"


def plot_cm(cm, labels, title, path, ylabel="true (parent tag)"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cm = np.array(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel(ylabel)
    import textwrap
    ax.set_title("\n".join(textwrap.wrap(title.replace("**", ""), 60)), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def gate_results(run) -> dict:
    """The recipe's `eval_gate_cv.py` results ({} when it has not been run)."""
    p = RUNS / run / "gate_cv.json"
    return json.loads(p.read_text()) if p.exists() else {}


def gate_cv(run, min_windows="2"):
    return gate_results(run).get("min_cry_windows", {}).get(min_windows)


def gate_speech(run):
    return gate_results(run).get("speech")


def gate_held_out(run):
    return gate_results(run).get("held_out_speech")


def gate_robust(run):
    return gate_results(run).get("robustness")


def gate_cell(run):
    g = gate_cv(run)
    if not g:
        return "not run"
    return (f"{g['recall']:.3f} / {g['fpr']:.3f} / {g['false_alarms_per_hour']:.0f} "
            f"([details](GATE_CV_{run}.md))")


def extra_aug(cfg):
    """The cry recipes' augmentation beyond the cached audio copies of cry clips and the random gain."""
    parts = []
    if cfg.get("feat_aug"):
        parts.append("feature warp of every crop (time stretch 0.85-1.15, mel shift -2..2 bins)")
    if cfg.get("hard_negatives"):
        parts.append("hard-negative mining (non-cry sampling weights x (0.25 + current p(cry)), every 50 steps after the first quarter)")
    if cfg.get("arch"):
        parts.append(f"wider network: conv {list(cfg['arch']['conv_channels'])}, LSTM {cfg['arch']['lstm_hidden']}")
    if cfg.get("neg_mix"):
        parts.append(f"two non-cry sounds mixed (p = {cfg['neg_mix']})")
    if cfg.get("speech_streams"):
        parts.append(f"{cfg['speech_streams']} six-second streams of continuous speech (one training-fold speaker's clips back to back) as negatives")
    if cfg.get("extra_negatives"):
        parts.append("extra negatives from Debian packages (`extra_negatives.py`: 400 six-second streams of speech in "
                     "14 languages/voices, 106 animal/household/instrument sounds, 40 music segments"
                     + ("; set 2: 346 more sound effects from qabcs and Scratch" if int(cfg["extra_negatives"]) >= 2 else "")
                     + ")")
    if cfg.get("swa_epochs"):
        parts.append(f"stochastic weight averaging: {cfg['swa_epochs']} more epochs at lr "
                     f"{cfg.get('swa_lr', cfg['max_lr'] / 10):g}, weights averaged, batch-norm statistics recomputed")
    if cfg.get("neg_aug"):
        parts.append("4 cached audio copies of every non-cry clip except FSDD's (pitch, stretch"
                     + (", noise as for cries)" if cfg.get("neg_aug_noise", True) else "; no noise)"))
    return "; ".join(parts) or "-"


def per_class_table(s, labels):
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab, c in zip(labels, s["per_class"]):
        lines.append(f"| {lab} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
    return "\n".join(lines)


def verdict(s, maj, lr=None):
    """Plain statement of whether the shipped recipe meets the targets under grouped CV."""
    f, g, m = s["adjusted"]["folds"], s["raw"]["folds"], maj["folds"]
    ok_f1 = f["macro_f1"]["mean"] > m["macro_f1"]["mean"] + 0.005
    ok_ba = f["balanced_accuracy"]["mean"] > m["balanced_accuracy"]["mean"] + 0.005
    ok_acc = f["accuracy"]["mean"] >= 0.75
    if ok_f1 and ok_ba and ok_acc:
        head = "**Verdict: the shipped recipe beats the majority baseline on macro-F1 and balanced accuracy at accuracy >= 0.75.**"
    else:
        head = ("**Verdict: target NOT met.** With the accuracy >= 0.75 constraint the logit adjustment has to push the "
                "network back to (almost) always answering \"hungry\": cross-fitted macro-F1 "
                f"{fmt(f['macro_f1'])} and balanced accuracy {fmt(f['balanced_accuracy'])} vs the majority baseline's "
                f"{fmt(m['macro_f1'])} / {fmt(m['balanced_accuracy'])}. Without the adjustment (balanced argmax) the "
                f"network predicts the rare classes often but not correctly: balanced accuracy {fmt(g['balanced_accuracy'])} "
                f"(chance = 0.20), macro-F1 {fmt(g['macro_f1'])}, accuracy {fmt(g['accuracy'])}. No CRNN recipe tried "
                "(random init, cry-pretrained trunk, balanced or sqrt-tempered sampling) finds a rare-class signal that "
                "transfers across recording groups: 6-21 parent-tagged clips per rare class from 5-13 devices are not "
                "enough. ")
        if lr is not None:
            head += (f"The logistic-regression baseline shows at most a weak one (balanced accuracy "
                     f"{fmt(lr['folds']['balanced_accuracy'])} at accuracy {fmt(lr['folds']['accuracy'])}), which also "
                     "disappears once accuracy >= 0.75 is required. ")
        head += "The ambition (macro-F1 >= 0.35) is far out of reach."
    return head


def main(argv=None):
    OUT.mkdir(parents=True, exist_ok=True)
    L = []
    w = L.append
    w("# DeepInfant training report\n")
    w("Regenerate everything (feature cache, cross-validation, final models, export, this report): "
      "`python3 training/train.py --all` (from the repository root; `--data DIR` defaults to `../shared/data`). "
      "This file alone: `python3 training/report.py`.\n")
    w("## Set-up\n")
    w("- **Data**: `manifest.csv` of the shared data folder. Reason model: the 366 Donate-a-Cry clips "
      "(hungry 305, discomfort 21, tired 20, belly_pain 14, burping 6), parent-tagged (noisy) labels. "
      "Cry detector: all 1,267 clips (`is_cry`), plus 24 generated silence/pink/hum/white-noise clips as negatives "
      "in training only.")
    w("- **Split**: the manifest's `fold` column (1-4, grouped by recording device / source recording / speaker: "
      "no group is on both sides of any split). 4-fold grouped cross-validation: each fold is tested once with a "
      "model trained on the other three; metrics are computed per test fold and reported as mean ± sample std "
      "over the 4 folds. Pooled tables (per-class, confusion matrices) use all out-of-fold (OOF) predictions. "
      "The shipped models are retrained on all four folds.")
    w("- **Band**: features use **fmax = 4000 Hz** because the Android uploads of Donate-a-Cry carry nothing above "
      "4 kHz (AMR at 8 kHz); training and live inference therefore see the same band whatever the recording device.")
    w("- **Features**: librosa log-mel, n_fft 2048, hop 512, 64 mels, 0-4000 Hz, power 2, center/constant padding, "
      "`power_to_db(ref=1, amin=1e-10, top_db=None)`, `[frames, 64]`; normalised by a global scalar mean/std of the "
      "training clips (stored as `norm_mean`/`norm_std`).")
    w("- **Windows**: 94 frames (3.0 s), hop 31 frames. Training: random 94-frame crops (shorter clips repeated or "
      "padded with -100 dB silence, 50/50). Evaluation exactly as the node does it: all full windows, a clip shorter "
      "than one window is one shorter window (padded with -100 dB to the conv stack's minimum of 8 frames), clip "
      "probabilities = softmax(mean over windows of log-softmax) (`mean_log_prob`). The reason CV uses all "
      "windows (no cry gate).")
    w("- **Augmentation** (precomputed, cached in `training/cache/`): 4 copies of every cry clip, each with pitch "
      "shift U(-2, 2) semitones, time stretch U(0.9, 1.1) and, with p = 0.8, additive noise at SNR U(0, 20) dB: "
      "a non-cry clip of the *same* fold (so a training copy never contains audio from a held-out fold), pink noise, "
      "or 50/60 Hz hum with harmonics. A training crop is drawn from the clean clip or one of its copies; a random "
      "gain of ±6 dB (reason) / ±10 dB (cry) is added in the log domain.")
    import train as TR
    TR.RUNS = RUNS
    TR.SHIPPED_REASON = TR.shipped_reason()
    TR.SHIPPED_CRY = TR.shipped_cry()
    cv = load(TR.SHIPPED_REASON)
    if cv:
        c = cv["cfg"]
        a = cv["arch"]
        w(f"- **Model**: `training/crnn.py` CRNN, conv channels {a['conv_channels']}, LSTM 2 x {a['lstm_hidden']}, "
          f"{a['pooling']} pooling, dense {a['dense']}, dropout {a['dropout']}: **{cv['params']:,} parameters** "
          f"(the paper size 32/64/128 + LSTM 128 has 824k and costs 2.5x the CPU time per step here).")
        w(f"- **Optimiser**: Adam, OneCycleLR max_lr {c['max_lr']}, div_factor {c['div_factor']} (1e-4 -> 1e-2 -> ~0), "
          f"batch {c['batch']}, {c['epochs']} epochs of {c['steps_per_epoch']} steps = "
          f"{c['epochs'] * c['steps_per_epoch']} optimiser steps (an \"epoch\" is a fixed number of batches from the "
          f"class-balanced sampler), gradient-norm clip 5, label smoothing {c['label_smoothing']}, seed {c['seed']}. "
          f"Reason: each batch draws a class with probability ~ n_c^{c['class_power']} "
          f"({'uniform' if c['class_power'] == 0 else 'sqrt-tempered: hungry about half of each batch'}), then a clip, "
          f"a copy and a crop; no loss weights. Conv trunk initialised from the cry detector of the same CV fold (trained without the test "
          f"fold), then everything is fine-tuned.")
    w("")

    # ------------------------------------------------------------------ reason table
    base = load("baselines")
    rows = []
    cms = []
    TR.SHIPPED_REASON = TR.shipped_reason()
    titles = {"reason_cv": "CRNN, cry-pretrained trunk, balanced sampling",
              "reason_scratch_cv": "CRNN, random init, balanced sampling",
              "reason_sqrt_cv": "CRNN, cry-pretrained trunk, sqrt-tempered sampling",
              "reason_noaug_cv": f"CRNN, shipped recipe WITHOUT augmentation (ablation)"}
    titles[TR.SHIPPED_REASON] = "**shipped recipe**: " + titles[TR.SHIPPED_REASON]
    variants = [(TR.SHIPPED_REASON, titles[TR.SHIPPED_REASON])] + \
        [(k, titles[k]) for k in [*TR.REASON_VARIANTS, "reason_noaug_cv"] if k != TR.SHIPPED_REASON]
    summaries = {}
    for key, title in variants:
        r = load(key)
        if not r:
            continue
        s = M.summarise_reason(r)
        summaries[key] = s
        rows.append((title + ": as trained, argmax", s["raw"], s["calibrated"]))
        rows.append((title + ": + logit adjustment + temperature (cross-fitted)", s["adjusted"], None))
        if key == TR.SHIPPED_REASON:
            cms.append((key + "_adjusted", title + " + logit adj. (as shipped)", s["adjusted"]))
        cms.append((key, title + ", as trained, argmax", s["raw"]))
    if base:
        for key, title in [("logreg", "Log-mel/MFCC statistics + logistic regression (balanced)"),
                           ("majority", "Majority class (always hungry)")]:
            s = M.summarise_probs(base[key])
            rows.append((title, s, None))
            cms.append((key, title, s))
            if key == "logreg":
                # same post-hoc logit adjustment + temperature as the CRNN (log-probabilities as one-window logits)
                lr_res = dict(oof=[dict(o, wlogits=[np.log(np.maximum(o["probs"], 1e-12)).tolist()]) for o in base[key]])
                sa = M.summarise_reason(lr_res)
                rows.append((title + " + logit adjustment + temperature (cross-fitted)", sa["adjusted"], None))
                cms.append(("logreg_adjusted", title + " + logit adj.", sa["adjusted"]))
    w("## Cry-reason model: 4-fold grouped cross-validation\n")
    w("Clip level, mean ± std over the 4 test folds. ECE: 15 confidence bins, top-class probability. "
      "\"ECE (T)\": after temperature scaling with T fit on the OOF predictions of the *other* three folds "
      "(cross-fitted, so the number is not fit on its own test data).\n")
    w("| model | accuracy | macro-F1 | balanced acc. | ECE | ECE (T) |")
    w("|---|---|---|---|---|---|")
    for title, s, cal in rows:
        f = s["folds"]
        w(f"| {title} | {fmt(f['accuracy'])} | {fmt(f['macro_f1'])} | {fmt(f['balanced_accuracy'])} | "
          f"{fmt(f['ece'])} | {fmt(cal['folds']['ece']) if cal else '-'} |")
    w("")
    w("\"as trained, argmax\": the network as trained with class-balanced (or sqrt-tempered) sampling, i.e. for a "
      "flattened class prior. "
      "\"+ logit adjustment\": `tau * log(training class prior)` added to the output bias (for a network trained on "
      "batches with class frequencies ~ n^alpha, tau = 1 - alpha restores the data prior), tau in {0, 0.1, ..., 1} picked to maximise macro-F1 subject to accuracy >= 0.75, then a "
      "temperature; for each test fold tau and T are chosen on the OOF predictions of the other three folds only, so "
      "these rows are honest estimates. The shipped model uses tau and T chosen on all OOF predictions, folded into "
      "`out.bias`/`out.weight`.\n")
    w("Targets (grouped CV): macro-F1 > 0.18 and balanced accuracy > 0.20 (majority baseline) with accuracy >= 0.75; "
      "ambition macro-F1 >= 0.35.\n")
    if TR.SHIPPED_REASON in summaries and base:
        w(verdict(summaries[TR.SHIPPED_REASON], M.summarise_probs(base["majority"]),
                  M.summarise_probs(base["logreg"])) + "\n")
    # a probe run by hand (training/probe_reason_embeddings.py, fold means), quoted rather than regenerated
    w("**Probe, not in the pipeline** (`training/probe_reason_embeddings.py`): logistic regression on the time-averaged "
      "LSTM output of the same fold's cry detector gives balanced accuracy 0.18-0.21 at accuracy 0.09-0.15 (C 0.01-1); "
      "with the clip statistics added, 0.24 at accuracy 0.23-0.25; after the same logit adjustment (accuracy >= 0.75 "
      "on the other folds) at best macro-F1 0.174 / balanced accuracy 0.200 (embeddings, accuracy 0.733) or 0.173 / "
      "0.184 (both, accuracy 0.747). The cry detector's representation carries no transferable reason signal either.\n")
    if TR.SHIPPED_REASON in summaries and "reason_noaug_cv" in summaries:
        a_ = summaries[TR.SHIPPED_REASON]["raw"]["folds"]
        b_ = summaries["reason_noaug_cv"]["raw"]["folds"]
        w(f"**Augmentation ablation**: with minus without augmentation: macro-F1 "
          f"{a_['macro_f1']['mean'] - b_['macro_f1']['mean']:+.3f}, balanced accuracy "
          f"{a_['balanced_accuracy']['mean'] - b_['balanced_accuracy']['mean']:+.3f}, accuracy "
          f"{a_['accuracy']['mean'] - b_['accuracy']['mean']:+.3f} (network as trained, argmax; fold-to-fold std of "
          f"macro-F1 {a_['macro_f1']['std']:.3f} / {b_['macro_f1']['std']:.3f}). After the logit adjustment: macro-F1 "
          f"{summaries[TR.SHIPPED_REASON]['adjusted']['folds']['macro_f1']['mean'] - summaries['reason_noaug_cv']['adjusted']['folds']['macro_f1']['mean']:+.3f}. "
          + ("The paper's ~5-point gain from augmentation is **not reproduced** here." if
             a_['macro_f1']['mean'] - b_['macro_f1']['mean'] < 0.02 else "") + "\n")
    if TR.SHIPPED_REASON in summaries:
        s = summaries[TR.SHIPPED_REASON]
        sh = s["shipped"]
        w(f"**Logit adjustment**: cross-fitted tau per fold {', '.join(f'{k}: {v:.1f}' for k, v in s['cross_fit_taus'].items())}"
          f"; shipped tau = {sh['tau']:.1f} (bias added {', '.join(f'{b:+.2f}' for b in sh['bias_added'])}), "
          f"then T = {sh['temperature']:.3f}. In-sample (all OOF, optimistic) with these: accuracy "
          f"{sh['in_sample']['accuracy']:.3f}, macro-F1 {sh['in_sample']['macro_f1']:.3f}, balanced accuracy "
          f"{sh['in_sample']['balanced_accuracy']:.3f}, ECE {sh['in_sample']['ece']:.3f}.\n")
        w(f"**Calibration (no logit adjustment)**: temperature fit on all OOF predictions T = {s['temperature']:.3f} "
          f"(reference only; the shipped model uses the T above); cross-fitted temperatures per fold "
          f"{', '.join(f'{k}: {v:.2f}' for k, v in s['cross_fit_temperatures'].items())}. Pooled OOF ECE "
          f"{s['raw']['pooled']['ece']:.3f} uncalibrated -> {s['ece_all_oof_T']:.3f} with the all-OOF T "
          f"(in-sample, optimistic) / {s['calibrated']['pooled']['ece']:.3f} cross-fitted.\n")
    w("### Per-class results (pooled OOF predictions)\n")
    for key, title, s in cms:
        png = f"cm_{key}.png"
        plot_cm(s["confusion"], REASONS, title, OUT / png)
        w(f"**{title.replace('**', '')}**: pooled accuracy {s['pooled']['accuracy']:.3f}, macro-F1 {s['pooled']['macro_f1']:.3f}, "
          f"balanced accuracy {s['pooled']['balanced_accuracy']:.3f}\n")
        w(per_class_table(s, REASONS))
        w(f"\n![{title.replace('**', '')}]({png})\n")

    # ------------------------------------------------------------------ cry detector
    cry = load(TR.SHIPPED_CRY)
    cry_variants = [k for k in ["cry_cv", *TR.CRY_VARIANTS] if load(k)]
    if cry:
        s = M.summarise_cry(cry)
        w("## Cry detector (cry gate): 4-fold grouped cross-validation\n")
        if len(cry_variants) > 1:
            w("Recipes compared (threshold per recipe picked the same way; the shipped one is detailed below):\n")
            w("Window level: clip = max over windows of p(cry) >= threshold, no activity detector. Gate level "
              "(`training/eval_gate_cv.py`, the real `deepinfant-edge detect` with min_cry_windows 2, threshold "
              "cross-fitted, each fold scored by the model trained without it): what a node does, and the basis of "
              "the choice; FSDD's 500 short spoken digits dominate the window-level FPR but never open an episode.\n")
            w("| recipe | steps | non-cry sampling | extra augmentation | recall (fold mean ± std) | FPR (fold mean ± std) | "
              "recall / FPR, threshold cross-fitted | AUC | **gate level**: recall / FPR / false alarms per hour |")
            w("|---|---|---|---|---|---|---|---|---|")
            for k in cry_variants:
                r = load(k)
                sk = M.summarise_cry(r)
                c = r["cfg"]
                boost = c.get("neg_source_boost") or {}
                tag = (" (shipped)" if k == TR.SHIPPED_CRY else " (seed replicate, not a candidate)" if k in TR.CRY_REPLICATES
                       else " (excluded: see below)" if k in TR.CRY_EXCLUDED else "")
                w(f"| {k}{tag} | {c['epochs'] * c['steps_per_epoch']} | "
                  f"sqrt(count){''.join(f' x{v} {s_}' for s_, v in boost.items())} | {extra_aug(c)} | {fmt(sk['folds']['recall'])} | "
                  f"{fmt(sk['folds']['fpr'])} | {sk['cross_fit']['recall']:.3f} / {sk['cross_fit']['fpr']:.3f} | "
                  f"{sk['auc_max']:.4f} | {gate_cell(k)} |")
            rep = [k for k in cry_variants if k in TR.CRY_REPLICATES]
            if rep:
                w("\nSeed noise: the replicate differs from its recipe by the seed only; the spread between the two is "
                  "the scale below which differences between recipes mean nothing.")
            for k, why in TR.CRY_EXCLUDED.items():
                w(f"\nExcluded from shipping: `{k}`: {why}.")
            sp = {k: gate_speech(k) for k in cry_variants}
            if any(sp.values()):
                w("\nContinuous speech through the gate (each fold's speech clips back to back, no gaps; `eval_gate_cv.py`): "
                  + "; ".join(f"{k} {v['false_alarms']} false alarms in {v['hours'] * 60:.1f} min" for k, v in sp.items() if v)
                  + ". The visible data has little continuous speech (FSDD's digits are half a second each), so every recipe "
                    "fires on people talking far more often than on the back-to-back test signal.")
            ho = {k: gate_held_out(k) for k in cry_variants}
            if any(ho.values()):
                m = next(v for v in ho.values() if v)
                w(f"\nHeld-out continuous speech ({m['minutes'] / m['folds']:.0f} min of Asterisk telephony prompts: 5 voice "
                  f"sets in English, Spanish, French, Italian, Russian, back to back through each of the {m['folds']} fold "
                  f"gates = {m['minutes']:.0f} min; no recipe trains on it): "
                  + "; ".join(f"{k} {v['false_alarms']}" for k, v in ho.items() if v) + f" false alarms in {m['minutes']:.0f} min.")
            w("")
        c = cry["cfg"]
        w(f"CRNN ({cry['params']:,} parameters; conv {cry['arch']['conv_channels']}, LSTM {cry['arch']['lstm_hidden']}), same features and windows; labels `[not_cry, cry]` (`is_cry`, all "
          f"sources). Sampling: half the batch cries, half non-cry with sources weighted by sqrt(count) (FSDD digits "
          f"would otherwise dominate), plus generated silence/noise/hum negatives; augmentation: the 4 cached "
          f"pitch/stretch/noise copies of cry clips, ±{c['gain_db']:.0f} dB random gain on everything"
          f"{'; ' + extra_aug(c) if extra_aug(c) != '-' else ''}. "
          f"{c['epochs']} x {c['steps_per_epoch']} = {c['epochs'] * c['steps_per_epoch']} steps, label smoothing "
          f"{c['label_smoothing']}, otherwise as above.\n")
        w(f"Clip decision: max over windows of p(cry) >= threshold. Threshold picked on the pooled OOF predictions as "
          f"the highest value keeping OOF cry recall >= {M.CRY_THRESHOLD_RECALL}: **threshold = {s['threshold']:.4f}** "
          f"(stored in the model file under `gate.threshold`). ROC AUC of the clip score: {s['auc_max']:.4f}.\n")
        w("| | recall on cries | false-positive rate on non-cry |")
        w("|---|---|---|")
        w(f"| per fold, mean ± std (pooled-OOF threshold) | {fmt(s['folds']['recall'])} | {fmt(s['folds']['fpr'])} |")
        w(f"| pooled OOF (pooled-OOF threshold) | {s['pooled']['recall']:.4f} ({s['pooled']['n_cry']}) | "
          f"{s['pooled']['fpr']:.4f} ({s['pooled']['n_not_cry']}) |")
        cf = s["cross_fit"]
        w(f"| per fold, threshold from the other 3 folds (honest) | {fmt(cf['fold_recall'])} | {fmt(cf['fold_fpr'])} |")
        w("")
        w("Targets: recall >= 0.97, FPR <= 0.03.\n")
        w("Per source:\n")
        w("| source | cries | recall | non-cry clips | FPR |")
        w("|---|---|---|---|---|")
        for src, r in s["per_source"].items():
            rec = "-" if r["recall"] is None else format(r["recall"], ".3f")
            fpr = "-" if r["fpr"] is None else format(r["fpr"], ".3f")
            w(f"| {src} | {r['n_cry']} | {rec} | {r['n_not_cry']} | {fpr} |")
        w("")
        w("Per non-cry class (classes with a false positive, then the rest summarised):\n")
        w("| non-cry class | clips | false positives | FPR |")
        w("|---|---|---|---|")
        clean = 0
        for lab, r in sorted(s["per_not_cry_class"].items(), key=lambda kv: -kv[1]["fpr"]):
            if r["false_positives"]:
                w(f"| {lab} | {r['n']} | {r['false_positives']} | {r['fpr']:.3f} |")
            else:
                clean += 1
        w(f"| {clean} other classes | | 0 | 0.000 |")
        w("")
        if s["missed_cries"]:
            w("Missed cries (OOF): " + ", ".join(f"`{m['path'].split('/')[-1]}` ({m['label']}, {m['p']:.2f})"
                                                for m in s["missed_cries"][:12]) +
              (" ..." if len(s["missed_cries"]) > 12 else "") + "\n")
        cm = s["clip_mean_log_prob"]
        plot_cm(s["gate_confusion"], ["not_cry", "cry"], f"cry gate: max over windows p(cry) >= {s['threshold']:.3f} "
                "(pooled OOF)", OUT / "cm_cry_gate.png", ylabel="true")
        w("![cry gate confusion](cm_cry_gate.png)\n")
        plot_cm(cm["confusion"], ["not_cry", "cry"], "cry detector (argmax of mean_log_prob)", OUT / "cm_cry.png",
                ylabel="true")
        w(f"Clip-level argmax of the `mean_log_prob` aggregate (not the gate rule): accuracy "
          f"{fmt(cm['folds']['accuracy'])}, balanced accuracy {fmt(cm['folds']['balanced_accuracy'])}, ECE "
          f"{fmt(cm['folds']['ece'])}.\n\n![cry confusion](cm_cry.png)\n")

    # ------------------------------------------------------------------ shipped models and timing
    w("## Shipped models\n")
    finals = {"reason": "final_reason", "cry": "final_" + TR.SHIPPED_CRY.replace("_cv", "")}
    for task in ("reason", "cry"):
        f = load(finals[task])
        if not f:
            w(f"- {task}: not trained yet.")
            continue
        extra = f", gate threshold {f['threshold']:.4f}" if task == "cry" else \
            (f", recipe `{TR.SHIPPED_REASON}`, logit adjustment tau {f['logit_adjustment']['tau']:.1f} "
             f"(out.bias += {', '.join(f'{x:+.2f}' for x in f['logit_adjustment']['bias_added'])}) and temperature "
             f"{f['temperature']:.3f} folded into `out`")
        w(f"- `{Path(f['export']).name}` (task `{task}`): trained on folds 1-4 in {f['train_seconds']:.0f} s, "
          f"{f['params']:,} parameters, norm_mean {f['norm_mean']:.3f}, norm_std {f['norm_std']:.3f}{extra}.")
    w("")
    w("Recipe choice (`train.choose_reason`): highest cross-fitted macro-F1, then balanced accuracy (3 decimals), "
      "then lowest ECE. All CRNN recipes tie at the majority level on the first two, so calibration decided. "
      "Cry recipe (`train.shipped_cry`): among the recipes whose gate-level grouped-CV recall (min_cry_windows 2) "
      f"reaches 0.97 less the seed noise measured on the replicates ({TR.recall_seed_noise({}):.3f}: below that a "
      "difference in recall is not measured), the fewest false alarms per hour of continuous speech (both speech "
      "signals pooled), then the lowest gate-level FPR; the highest gate-level recall when none qualifies "
      "(window-level OOF FPR at the recall-0.975 threshold when no gate-level results exist).\n")
    counts = shipped_counts()
    if counts is not None:
        w("The shipped reason model on its own 366 training recordings (clip argmax): " +
          ", ".join(f"{k} {n}" for k, n in zip(REASONS, counts)) + ".\n")
    w("## Wall times\n")
    w("Measured on this machine: 2 CPU cores shared with parallel Swift builds, torch 1 thread per process, two "
      "training processes at a time, so the times are inflated by contention (an uncontended reason fold of 600 "
      "steps takes ~3.5 min, ~0.3 s per step; contended it took 5-10 min).\n")
    w("| stage | wall time |")
    w("|---|---|")
    for key in ("cry_cv", *TR.CRY_VARIANTS, *TR.REASON_VARIANTS, "reason_noaug_cv", "baselines"):
        r = load(key)
        if r:
            w(f"| {key} | {r['wall_seconds']:.0f} s |")
    for name in dict.fromkeys(["final_cry", finals["cry"], "final_reason"]):
        f = load(name)
        if f:
            w(f"| {name} (training only) | {f['train_seconds']:.0f} s |")
    w("")
    (OUT / "REPORT.md").write_text("\n".join(L) + "\n")
    print(f"wrote {OUT / 'REPORT.md'}")
    if MODEL_CARD is not None:
        write_model_card(summaries, base, cry, TR)


MODEL_CARD = HERE.parent / "docs" / "model-card.md"


def shipped_counts():
    """Predicted-class counts of the exported reason model on the 366 Donate-a-Cry training clips."""
    path = HERE.parent / "models" / "deepinfant-reason.safetensors"
    if not path.exists():
        return None
    import pickle
    import torch
    from safetensors import safe_open
    import train as TR
    with safe_open(str(path), framework="np") as f:
        meta = json.loads(f.metadata()["deepinfant"])
        sd = {k: torch.from_numpy(f.get_tensor(k).copy()) for k in f.keys() if k != "selftest.input"}
    a = meta["architecture"]
    m = TR.CRNN(64, 5, conv_channels=tuple(a["conv_channels"]), lstm_hidden=a["lstm_hidden"],
                dense=tuple(a["dense"]), pooling=a["pooling"])
    m.load_state_dict(sd, strict=False)
    clean = pickle.load(open(TR.fx.CACHE / "clean.pkl", "rb"))
    rows = [r for r in TR.fx.read_manifest(TR.fx.DEFAULT_DATA) if r["source"] == "donateacry"]
    wl = TR.window_logits(m, [clean[r["path"]] for r in rows], meta["features"]["norm_mean"],
                          meta["features"]["norm_std"])
    return np.bincount(M.clip_probs(wl).argmax(1), minlength=5).tolist()


def write_model_card(summaries, base, cry, TR):
    fr, fc = load("final_reason"), load("final_" + TR.SHIPPED_CRY.replace("_cv", ""))
    s = summaries.get(TR.SHIPPED_REASON)
    L = []
    w = L.append
    w("# Model card: DeepInfant Edge CRNN models\n")
    w("*Generated by `python3 training/report.py` (part of `python3 training/train.py --all`) from the results in "
      "`training/runs/`; full numbers and confusion matrices in [training/report/REPORT.md](../training/report/REPORT.md).*\n")
    gate2 = HERE / "report" / "MODEL_CARD_GATE.md"  # hand-written: the YAMNet gate (training/yamnet_head.py)
    if gate2.exists():
        w(gate2.read_text().rstrip() + "\n")
    feedback = HERE / "report" / "MODEL_CARD_FEEDBACK.md"  # hand-written: caregiver feedback (training/feedback_sim.py)
    if feedback.exists():
        w(feedback.read_text().rstrip() + "\n")
    w("## Models\n")
    w("| file | task | labels | output |")
    w("|---|---|---|---|")
    w(f"| `models/deepinfant-reason.safetensors` (`deepinfant-crnn-reason` {TR.MODEL_VERSIONS['reason']}) | cry reason | belly_pain, burping, "
      "discomfort, hungry, tired | calibrated class probabilities per recording (`mean_log_prob` over 3 s windows) |")
    w(f"| `models/deepinfant-cry.safetensors` (`deepinfant-crnn-cry` {TR.MODEL_VERSIONS['cry']}) | cry detector (cry gate) | not_cry, cry | "
      "p(cry) per 3 s window; a recording is a cry when the max over windows >= `gate.threshold` |")
    w("")
    if fr:
        a = fr["arch"]
        w(f"Architecture (both): `training/crnn.py` CRNN, conv {a['conv_channels']} (3x3, BN, ReLU, 2x2 max-pool, "
          f"dropout {a['dropout']}), 2 x LSTM {a['lstm_hidden']}, {a['pooling']} pooling over time, dense {a['dense']}, "
          f"linear output: {fr['params']:,} parameters (reason), {fc['params'] if fc else 0:,} (cry). Input: 64-band "
          f"log-mel (0-4000 Hz, n_fft 2048, hop 512 at 16 kHz), 94 frames = 3.0 s per window, hop 31 frames.\n")
        if fc and fc["arch"] != a:
            b = fc["arch"]
            w(f"The cry detector is wider: conv {b['conv_channels']}, 2 x LSTM {b['lstm_hidden']}, dense {b['dense']} "
              f"({fc['params']:,} parameters); the reason model above is the one the sentence describes.\n")
    w("## Intended use\n")
    w("A **caregiver aid**: a hint about why an infant may be crying, shown alongside the caregiver's own judgement. "
      "**Not a medical device**; not for diagnosis, triage or monitoring of a child's health, and not a substitute for "
      "attending to the child. A \"belly_pain\" output in particular says nothing reliable about pain or illness.\n")
    w("## Data\n")
    w("- Reasons: the 366 Donate-a-Cry recordings of the shared data folder (cleaned set, ~7 s each, 16 kHz), tagged by "
      "parents in a phone app: hungry 305 (83 %), discomfort 21, tired 20, belly_pain 14, burping 6.")
    w("- Cry detector: all 1,267 clips: Donate-a-Cry 366 and ESC-50 crying_baby 32 as cries; non-cry: FSDD spoken "
      "digits 500, ESC-50 360 (49 classes), 8 librosa example recordings, 1 two-speaker conversation; plus generated "
      "silence, pink/white noise and mains hum during training"
      + (". Extra non-cry training audio from Debian packages (`training/extra_negatives.py`, sampled at half weight): "
         "Tux Paint's spoken stamp descriptions as 400 six-second streams of continuous speech in 14 languages/voices "
         "(GPL-2), its 106 animal/household/instrument sounds, 40 ten-second stretches of fillets-ng's music (GPL-2). "
         "Held out from all training and used only to measure false alarms on talking: Asterisk's telephony prompts "
         "(5 voice sets, CC-BY-SA-3.0 / CC-BY-3.0)."
         if (load(TR.SHIPPED_CRY) or {}).get("cfg", {}).get("extra_negatives") else "."))
    w("- Augmentation: pitch shift ±2 semitones, time stretch ±10 %, background noise (non-cry clips of the training "
      "folds, pink noise, hum) at 0-20 dB SNR, random gain.\n")
    w("## Evaluation\n")
    w("4-fold grouped cross-validation on the manifest's `fold` column (groups = recording device / source recording / "
      "speaker, never split across folds); mean ± std over the 4 test folds. The shipped models are retrained on all "
      "four folds; a further held-out fold (not available to us) judges them.\n")
    if s:
        f = s["adjusted"]["folds"]
        g = s["raw"]["folds"]
        w("**Cry reason** (clip level):\n")
        w("| model | accuracy | macro-F1 | balanced accuracy | ECE |")
        w("|---|---|---|---|---|")
        w(f"| shipped CRNN (logit adjustment + temperature, cross-fitted) | {fmt(f['accuracy'])} | {fmt(f['macro_f1'])} | "
          f"{fmt(f['balanced_accuracy'])} | {fmt(f['ece'])} |")
        w(f"| same network without the logit adjustment (argmax) | {fmt(g['accuracy'])} | {fmt(g['macro_f1'])} | "
          f"{fmt(g['balanced_accuracy'])} | {fmt(g['ece'])} |")
        if base:
            for key, title in [("logreg", "log-mel/MFCC stats + logistic regression"), ("majority", "always \"hungry\"")]:
                b = M.summarise_probs(base[key])["folds"]
                w(f"| {title} | {fmt(b['accuracy'])} | {fmt(b['macro_f1'])} | {fmt(b['balanced_accuracy'])} | "
                  f"{fmt(b['ece'])} |")
        w("")
        pc = s["adjusted"]["per_class"]
        w("Per-class F1 (pooled out-of-fold): " + ", ".join(f"{k} {c['f1']:.2f} (n={c['support']})"
                                                          for k, c in zip(REASONS, pc)) + ".\n")
        counts = shipped_counts()
        if counts is not None:
            w("The shipped reason model, run on its own 366 training recordings, answers: " +
              ", ".join(f"{k} {n}" for k, n in zip(REASONS, counts)) + ".\n")
        if base and f["ece"]["mean"] > M.summarise_probs(base["majority"])["folds"]["ece"]["mean"]:
            w("Its expected calibration error is higher than that of the constant base-rate prediction (table).\n")
    if cry:
        c = M.summarise_cry(cry)
        w(f"**Cry detector** (clip decision max-over-windows p(cry) >= {c['threshold']:.3f}, threshold chosen on "
          f"out-of-fold predictions): recall on cries {fmt(c['folds']['recall'])}, false-positive rate on non-cry "
          f"clips {fmt(c['folds']['fpr'])} (per fold); with the threshold re-chosen without the test fold: recall "
          f"{c['cross_fit']['recall']:.3f}, FPR {c['cross_fit']['fpr']:.3f}. ROC AUC {c['auc_max']:.3f}.\n")
        g = gate_cv(TR.SHIPPED_CRY)
        if g:
            w(f"**Cry gate as a node runs it** (activity detector + cry detector + episode rule with 2 cry windows, "
              f"`training/eval_gate_cv.py`, grouped CV with cross-fitted thresholds): recall on cries {g['recall']:.3f}, "
              f"false-positive rate on non-cry clips {g['fpr']:.3f}, {g['false_alarms_per_hour']:.0f} false alarms per "
              f"hour of non-cry audio played back to back (targets: >= 0.97, <= 0.03, <= 1)"
              + (f"; recall at -10 dB gain {rb['recall_minus_10_db']:.3f}, with household noise at 10 dB SNR "
                 f"{rb['recall_noise_10_db_snr']:.3f}" if (rb := gate_robust(TR.SHIPPED_CRY)) else "") + "."
              + (f" The same recipe with another seed: recall {r['recall']:.3f}, false-positive rate {r['fpr']:.3f}, "
                 f"{r['false_alarms_per_hour']:.0f} false alarms per hour (the spread between the two is seed noise)."
                 if (r := gate_cv(TR.SHIPPED_CRY.replace("_cv", "_seed1_cv"))) else "")
              + (f" Continuous adult speech (the folds' speech clips back to back): {sp['false_alarms']} false alarms in "
                 f"{sp['hours'] * 60:.1f} min, about {sp['false_alarms_per_hour']:.0f} per hour of talking."
                 if (sp := gate_speech(TR.SHIPPED_CRY)) else "")
              + (f" Held-out continuous speech in 4 languages that no recipe trains on (Asterisk prompts, "
                 f"{ho['minutes']:.0f} min through the fold gates): {ho['false_alarms']} false alarms, "
                 f"{ho['false_alarms_per_hour']:.1f} per hour of talking."
                 if (ho := gate_held_out(TR.SHIPPED_CRY)) else "") + "\n")
    exports = HERE / "report" / "MODEL_CARD_EXPORTS.md"  # written by training/export_report.py (ONNX / Core ML)
    if exports.exists():
        w(exports.read_text().rstrip() + "\n")
    w("## Limitations\n")
    w("- **Noisy labels**: reasons are what a parent tapped in an app, not verified; a recording can carry several "
      "needs or none. Agreement between the model and these tags is a weak proxy for being right.")
    w("- **Very few rare-class examples**: 6 burping, 14 belly_pain, 20 tired, 21 discomfort recordings (from 5, 5, 13 "
      "and 13 devices). Per-class numbers for these classes rest on a handful of clips and swing widely between "
      "folds; the model mostly answers \"hungry\" and its rare-class predictions are unreliable.")
    if s and base and "NOT met" in verdict(s, M.summarise_probs(base["majority"])):
        w("- **The reason model does not do better than always answering \"hungry\"** under grouped cross-validation "
          "(table above). Treat its output as \"probably hungry, with roughly the data's base rates for the rest\", "
          "not as a detector of the other needs.")
    w("- **Band**: Android uploads of Donate-a-Cry carry nothing above 4 kHz, so the features stop at 4 kHz for all "
      "devices; information above 4 kHz is deliberately ignored.")
    w("- **Population and recording conditions**: one crowd-sourced corpus of phone recordings (ages and "
      "demographics as uploaded); other microphones, rooms, languages of background speech, or older/younger "
      "infants are untested. Non-cry negatives cover speech (mostly spoken digits), ESC-50 environmental sounds "
      "and a few music/animal clips"
      + ("; the cry detector also trains on 40 min of speech in 14 languages/voices, 106 animal/household/instrument "
         "sounds and 7 min of music from Debian packages (`training/extra_negatives.py`)"
         if (load(TR.SHIPPED_CRY) or {}).get("cfg", {}).get("extra_negatives") else "")
      + "; other household sounds may trigger the cry gate.")
    w("- **Calibration**: temperature fit on out-of-fold predictions; probabilities are calibrated on this data's "
      "class mix (83 % hungry) and will be off where the mix differs.")
    if cry:
        c = M.summarise_cry(cry)
        worst = sorted(((v["fpr"], k, v["n"]) for k, v in c["per_not_cry_class"].items() if v["false_positives"]),
                       reverse=True)[:6]
        w(f"- **Cry gate false alarms**: at the shipped threshold the out-of-fold false-positive rate is "
          f"{c['pooled']['fpr']:.3f} (target <= 0.03) at recall {c['pooled']['recall']:.3f}; animal and other "
          "tonal sounds fire it most: " + ", ".join(f"{k} {fp:.2f} (n={n})" for fp, k, n in worst) +
          ". Long recordings have more windows and so more chances for a false alarm (max over windows)." +
          (f" Through the whole gate (grouped CV): false-positive rate {gate_cv(TR.SHIPPED_CRY)['fpr']:.3f}, "
           f"{gate_cv(TR.SHIPPED_CRY)['false_alarms_per_hour']:.0f} false alarms per hour of continuous non-cry sound "
           "(target <= 1): a nursery with pets, sirens or TV will see false cry events."
           if gate_cv(TR.SHIPPED_CRY) else ""))
    MODEL_CARD.parent.mkdir(exist_ok=True)
    MODEL_CARD.write_text("\n".join(L) + "\n")
    print(f"wrote {MODEL_CARD}")


if __name__ == "__main__":
    main(sys.argv[1:])
