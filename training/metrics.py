"""Metrics for the DeepInfant CV results (used by train.py and report.py)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

REASONS = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
FOLDS = [1, 2, 3, 4]
CRY_RECALL_TARGET = 0.97
CRY_THRESHOLD_RECALL = 0.975  # threshold picked on OOF for this recall (small margin over the 0.97 target)


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: 15 equal-width confidence bins on the top-class probability."""
    conf = probs.max(1)
    pred = probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    e = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            e += m.mean() * abs(np.mean(pred[m] == y[m]) - conf[m].mean())
    return float(e)


def clip_probs(wlogits, temperature=1.0):
    out = []
    for w in wlogits:
        z = np.asarray(w, np.float64) / temperature
        lp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        m = lp.mean(axis=0)
        out.append(np.exp(m - np.logaddexp.reduce(m)))
    return np.array(out)


def fit_temperature(wlogits, labels):
    labels = np.asarray(labels)
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 161))
    nll = [-np.mean(np.log(clip_probs(wlogits, t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def nll(probs, y):
    return float(-np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12)))


def mstd(v):
    v = np.asarray(v, np.float64)
    return dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if len(v) > 1 else 0.0, folds=[float(x) for x in v])


def class_metrics(y, pred, n):
    labels = list(range(n))
    return dict(accuracy=float(np.mean(pred == y)),
                macro_f1=float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
                balanced_accuracy=float(balanced_accuracy_score(y, pred)))


def summarise_probs(entries, probs_key="probs", extra_probs=None):
    """entries: dicts with y, fold; probs taken from entry[probs_key] (or extra_probs array, pooled order)."""
    y = np.array([e["y"] for e in entries])
    folds = np.array([e["fold"] for e in entries])
    P = np.array(extra_probs) if extra_probs is not None else np.array([e[probs_key] for e in entries])
    n = P.shape[1]
    per_fold = {k: [] for k in ("accuracy", "macro_f1", "balanced_accuracy", "ece", "nll")}
    for f in FOLDS:
        m = folds == f
        cm = class_metrics(y[m], P[m].argmax(1), n)
        for k, v in cm.items():
            per_fold[k].append(v)
        per_fold["ece"].append(ece(P[m], y[m]))
        per_fold["nll"].append(nll(P[m], y[m]))
    pred = P.argmax(1)
    pr, rc, f1, sup = precision_recall_fscore_support(y, pred, labels=list(range(n)), zero_division=0)
    return dict(
        folds={k: mstd(v) for k, v in per_fold.items()},
        pooled=dict(class_metrics(y, pred, n), ece=ece(P, y), nll=nll(P, y)),
        per_class=[dict(precision=float(a), recall=float(b), f1=float(c), support=int(d))
                   for a, b, c, d in zip(pr, rc, f1, sup)],
        confusion=confusion_matrix(y, pred, labels=list(range(n))).tolist(),
    )


TAUS = [round(0.1 * i, 1) for i in range(11)]
MIN_ACCURACY = 0.75


def log_prior(y, n=5):
    c = np.bincount(y, minlength=n).astype(np.float64)
    return np.log(c / c.sum())


def adjusted(wl, bias):
    return [np.asarray(w) + bias for w in wl]


def select_tau(wl, y, priors):
    """Post-hoc logit adjustment: add tau * log(training prior) to the output bias (the model was trained with
    class-balanced sampling, i.e. for a uniform prior; tau = 1 restores the data prior). Pick tau maximising
    macro-F1 subject to accuracy >= MIN_ACCURACY (if no tau reaches it, the most accurate tau)."""
    best, best_key = 0.0, None
    for tau in TAUS:
        P = clip_probs([w + tau * p for w, p in zip(wl, priors)])
        pred = P.argmax(1)
        acc = np.mean(pred == y)
        f1 = f1_score(y, pred, labels=list(range(5)), average="macro", zero_division=0)
        key = (1, f1, acc) if acc >= MIN_ACCURACY else (0, acc, f1)
        if best_key is None or key > best_key:
            best, best_key = tau, key
    return best


def oof_priors(oof):
    """log prior of each OOF clip's training folds."""
    y = np.array([o["y"] for o in oof])
    folds = np.array([o["fold"] for o in oof])
    lp = {f: log_prior(y[folds != f]) for f in FOLDS}
    return [lp[o["fold"]] for o in oof], log_prior(y)


def summarise_reason(res):
    oof = res["oof"]
    wl = [np.array(o["wlogits"]) for o in oof]
    y = np.array([o["y"] for o in oof])
    folds = np.array([o["fold"] for o in oof])
    raw = summarise_probs(oof, extra_probs=clip_probs(wl))
    priors, prior_all = oof_priors(oof)
    # cross-fitted logit adjustment + temperature: tau and T for fold f chosen on the other folds' OOF predictions
    P_adj = np.zeros((len(oof), len(REASONS)))
    taus, temps_adj = {}, {}
    for f in FOLDS:
        m = folds == f
        tr = [i for i in range(len(oof)) if not m[i]]
        te = [i for i in range(len(oof)) if m[i]]
        tau = select_tau([wl[i] for i in tr], y[tr], [priors[i] for i in tr])
        t = fit_temperature([wl[i] + tau * priors[i] for i in tr], y[tr])
        taus[f], temps_adj[f] = tau, t
        P_adj[m] = clip_probs([wl[i] + tau * priors[i] for i in te], t)
    adj = summarise_probs(oof, extra_probs=P_adj)
    tau_all = select_tau(wl, y, priors)
    wl_all = [w + tau_all * p for w, p in zip(wl, priors)]
    T_all = fit_temperature(wl_all, y)
    shipped = dict(tau=tau_all, temperature=T_all, log_prior=prior_all.tolist(),
                   bias_added=(tau_all * prior_all).tolist(),
                   in_sample=summarise_probs(oof, extra_probs=clip_probs(wl_all, T_all))["pooled"])
    # cross-fitted temperature: for each fold, T fit on the OOF predictions of the other three folds
    P_cf = np.zeros((len(oof), len(REASONS)))
    temps = {}
    for f in FOLDS:
        m = folds == f
        t = fit_temperature([w for w, k in zip(wl, m) if not k], y[~m])
        temps[f] = t
        P_cf[m] = clip_probs([w for w, k in zip(wl, m) if k], t)
    cal = summarise_probs(oof, extra_probs=P_cf)
    T = fit_temperature(wl, y)
    return dict(raw=raw, calibrated=cal, cross_fit_temperatures=temps, temperature=T,
                ece_all_oof_T=ece(clip_probs(wl, T), y), adjusted=adj, cross_fit_taus=taus,
                cross_fit_temperatures_adjusted=temps_adj, shipped=shipped)


def cry_scores(oof):
    """Per clip: max over windows of p(cry), from the stored window logits."""
    return np.array([np.exp(w - np.logaddexp.reduce(w, axis=1, keepdims=True))[:, 1].max()
                     for w in (np.array(o["wlogits"]) for o in oof)])


def cry_threshold(scores_of_cries):
    """Highest threshold keeping recall >= CRY_THRESHOLD_RECALL on these cry scores."""
    cs = np.sort(scores_of_cries)
    return float(cs[int(np.floor((1 - CRY_THRESHOLD_RECALL) * len(cs)))])


def cross_fit_thresholds(pmax, y, folds):
    """{fold: threshold chosen on the other folds' cries}: no test fold sees its own threshold choice."""
    return {f: cry_threshold(pmax[(folds != f) & (y == 1)]) for f in FOLDS}


def summarise_cry(res):
    oof = res["oof"]
    wl = [np.array(o["wlogits"]) for o in oof]
    y = np.array([o["y"] for o in oof])
    folds = np.array([o["fold"] for o in oof])
    pmax = cry_scores(oof)
    thr = cry_threshold(pmax[y == 1])
    dec = pmax >= thr

    def rates(m):
        pos, neg = m & (y == 1), m & (y == 0)
        return dict(recall=float(dec[pos].mean()) if pos.any() else None, n_cry=int(pos.sum()),
                    fpr=float(dec[neg].mean()) if neg.any() else None, n_not_cry=int(neg.sum()))
    per_fold = [rates(folds == f) for f in FOLDS]
    srcs = sorted({o["source"] for o in oof})
    per_source = {s: rates(np.array([o["source"] == s for o in oof])) for s in srcs}
    neg_labels = sorted({o["label"] for o in oof if o["y"] == 0})
    per_neg_class = {}
    for lab in neg_labels:
        m = np.array([o["label"] == lab and o["y"] == 0 for o in oof])
        per_neg_class[lab] = dict(fpr=float(dec[m].mean()), n=int(m.sum()), false_positives=int(dec[m].sum()))
    # cross-fitted threshold: for each fold, threshold from the other three folds (honest estimate)
    cf_dec = np.zeros(len(y), bool)
    for f, t in cross_fit_thresholds(pmax, y, folds).items():
        cf_dec[folds == f] = pmax[folds == f] >= t
    from sklearn.metrics import roc_auc_score
    cp = clip_probs(wl)
    return dict(
        threshold=thr,
        pooled=rates(np.ones(len(y), bool)),
        folds=dict(recall=mstd([r["recall"] for r in per_fold]), fpr=mstd([r["fpr"] for r in per_fold])),
        per_source=per_source, per_not_cry_class=per_neg_class,
        cross_fit=dict(recall=float(cf_dec[y == 1].mean()), fpr=float(cf_dec[y == 0].mean()),
                       fold_recall=mstd([cf_dec[(folds == f) & (y == 1)].mean() for f in FOLDS]),
                       fold_fpr=mstd([cf_dec[(folds == f) & (y == 0)].mean() for f in FOLDS])),
        auc_max=float(roc_auc_score(y, pmax)),
        gate_confusion=confusion_matrix(y, dec.astype(int), labels=[0, 1]).tolist(),
        clip_mean_log_prob=summarise_probs(oof, extra_probs=cp),
        temperature=fit_temperature(wl, y),
        false_positives=[dict(path=o["path"], label=o["label"], p=float(p)) for o, p, d in zip(oof, pmax, dec)
                         if d and o["y"] == 0],
        missed_cries=[dict(path=o["path"], label=o["label"], p=float(p)) for o, p, d in zip(oof, pmax, dec)
                      if not d and o["y"] == 1],
    )


def summarise_cv(res, task):
    return summarise_reason(res) if task == "reason" else summarise_cry(res)


def compact(summary, task):
    """Small metrics dict for the model file's `training.metrics`."""
    r = lambda x: round(float(x), 4)  # noqa: E731
    if task == "reason":
        f = summary["adjusted"]["folds"]
        g = summary["raw"]["folds"]
        return dict(cv="4-fold grouped (manifest fold column), clip level, mean +- std over folds; logit "
                       "adjustment tau and temperature cross-fitted on the other folds' OOF predictions",
                    accuracy=[r(f["accuracy"]["mean"]), r(f["accuracy"]["std"])],
                    macro_f1=[r(f["macro_f1"]["mean"]), r(f["macro_f1"]["std"])],
                    balanced_accuracy=[r(f["balanced_accuracy"]["mean"]), r(f["balanced_accuracy"]["std"])],
                    ece=[r(f["ece"]["mean"]), r(f["ece"]["std"])],
                    per_class_f1={k: r(v["f1"]) for k, v in zip(REASONS, summary["adjusted"]["per_class"])},
                    without_logit_adjustment=dict(
                        accuracy=[r(g["accuracy"]["mean"]), r(g["accuracy"]["std"])],
                        macro_f1=[r(g["macro_f1"]["mean"]), r(g["macro_f1"]["std"])],
                        balanced_accuracy=[r(g["balanced_accuracy"]["mean"]), r(g["balanced_accuracy"]["std"])],
                        ece=[r(g["ece"]["mean"]), r(g["ece"]["std"])]),
                    majority_baseline=dict(accuracy=0.834, macro_f1=0.182, balanced_accuracy=0.2))
    return dict(cv="4-fold grouped, clip level: max over windows of p(cry) >= threshold",
                threshold=r(summary["threshold"]),
                recall=[r(summary["folds"]["recall"]["mean"]), r(summary["folds"]["recall"]["std"])],
                fpr=[r(summary["folds"]["fpr"]["mean"]), r(summary["folds"]["fpr"]["std"])],
                cross_fit_threshold=dict(recall=r(summary["cross_fit"]["recall"]), fpr=r(summary["cross_fit"]["fpr"])),
                auc=r(summary["auc_max"]))
