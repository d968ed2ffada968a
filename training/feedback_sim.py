#!/usr/bin/env python3
"""Caregiver feedback (issue #15), simulated on the labelled folds: what "not a cry" taps do to false alarms and cry
recall (the per-home veto), and what reason answers do to the reported reason (the per-home reason layer).

NumPy reimplementation, line for line, of the Swift node's learners -- keep them in step:
- `Space`        = Sources/Feedback/EmbeddingSpace.swift (the cry head's standardisation (e - mean) * scale, then
                   unit length; a dot product is a cosine);
- `veto_mask`    = Sources/Feedback/HomeVeto.swift `decide` (vetoed when max cos to a `not_cry` patch >= similarity
                   AND >= max cos to a confirmed-cry patch + margin; -1 when a list is empty);
- `ReasonLayer`  = Sources/Feedback/HomeReasonLayer.swift (Laplace prior over the answers, nearest-centroid softmax
                   of beta * cos to each answered label's normalised sum of projected mean embeddings, half and half,
                   weighted N / (N + kappa) against the global probabilities; `adapt(..., exclude)` and the top-label
                   tie rule of `leaveOneOut`);
- `episodes`     = the gate's EpisodeTracker as training/yamnet_head.py `stream_events` simulates it (a patch every
                   0.48 s, `min_cry_patches` 2 in a row, hang-over 4 s), with Sources/Gate/CryGate.swift's veto (a
                   head-positive patch the veto silences scores 0 for the tracker) and Sources/Gate/EpisodeEvidence.swift
                   (an episode keeps the head-positive patches from its onset on, vetoed ones included, the 16
                   highest-scoring);
- the episode's mean embedding = FeedbackBook.meanProjection (projection of the mean of the raw kept embeddings).

Embeddings: training/yamnet_head.py's cache (`python3 training/yamnet_head.py embed --backend tflite --sets clips`):
the int8 TFLite file's dequantised embeddings, which agree with the float reference the node computes to cosine
~0.999 (YAMNET_PARITY.md); the cry head is the shipped one (Sources/Inference/Resources/deepinfant-cry-head.safetensors)
with its metadata threshold, applied as on the node. The gate's activity detector is not simulated (every patch is
scored), as in yamnet_head.py. Global reason probabilities: training/reason_probs.py (the shipped reason CRNN).

    python3 training/yamnet_head.py embed --backend tflite --sets clips
    python3 training/reason_probs.py
    python3 training/feedback_sim.py            # -> training/report/FEEDBACK_SIM.md + feedback_sim.json
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import features as fx  # noqa: E402
import yamnet_head as yh  # noqa: E402

HEAD = ROOT / "Sources" / "Inference" / "Resources" / "deepinfant-cry-head.safetensors"
REPORT = HERE / "report" / "FEEDBACK_SIM.md"
REPORT_JSON = HERE / "report" / "feedback_sim.json"
MAX_PATCHES = 16          # EvidenceCollector.maxPatches
MIN_CRY_PATCHES = 2       # the head's recommended gate
HANGOVER = 4.0
# the Swift defaults (FeedbackSettings.swift)
DEFAULTS = dict(similarity=0.80, margin=0.05, beta=10.0, kappa=8.0)
KS = (1, 2, 4, 8)
DRAWS = 10
MIN_CLASS_CLIPS = 5
SIM_GRID = (0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90)
MARGIN_GRID = (0.0, 0.05, 0.1, 0.2)
BETA_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
KAPPA_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 1e9)
REASONS = ["belly_pain", "burping", "discomfort", "hungry", "tired"]


# ------------------------------------------------------------------------------------------ the Swift learners
class Space:
    """EmbeddingSpace.swift: (e - mean) * scale, then unit length (zero stays zero); float32 as on the node."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean, self.scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)

    def project(self, E: np.ndarray) -> np.ndarray:
        U = (np.atleast_2d(np.asarray(E, np.float32)) - self.mean) * self.scale
        n = np.sqrt((U * U).sum(axis=1, keepdims=True))
        return np.where(n > 0, U / np.where(n > 0, n, 1), U).astype(np.float32)


def max_cos(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Per row of U: max dot product with a row of V; -1 when V is empty (HomeVeto's `?? -1`)."""
    if len(V) == 0 or len(U) == 0:
        return np.full(len(U), -1.0, np.float32)
    return (U @ V.T).max(axis=1)


def veto_mask(sn: np.ndarray, sp: np.ndarray, similarity: float, margin: float, has_negatives: bool = True) -> np.ndarray:
    """HomeVeto.decide from the two similarities (no negatives: nothing is vetoed, `isEmpty`)."""
    if not has_negatives:
        return np.zeros(len(sn), bool)
    return (sn >= similarity) & (sn >= sp + margin)


def top_label(p: dict) -> str:
    """HomeReasonLayer.leaveOneOut's `top`: highest probability, ties to the alphabetically first label."""
    return sorted(p.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


class ReasonLayer:
    """HomeReasonLayer.swift. examples: (label, projected mean embedding or None, global probabilities)."""

    def __init__(self, labels, examples, beta: float, kappa: float):
        self.labels, self.beta, self.kappa = list(labels), beta, kappa
        self.counts = np.zeros(len(labels), int)
        self.sums = [None] * len(labels)
        for lab, v, _ in examples:
            if lab not in self.labels:
                continue
            c = self.labels.index(lab)
            self.counts[c] += 1
            if v is not None:
                self.sums[c] = v.astype(np.float32).copy() if self.sums[c] is None else (self.sums[c] + v).astype(np.float32)

    def adapt(self, glob: dict, emb, exclude=None) -> dict:
        counts, sums = self.counts.copy(), list(self.sums)
        if exclude is not None and exclude[0] in self.labels:
            c = self.labels.index(exclude[0])
            counts[c] -= 1
            if exclude[1] is not None and sums[c] is not None:
                sums[c] = (sums[c] - exclude[1]).astype(np.float32) if counts[c] > 0 else None
        n = float(counts.sum())
        if n <= 0:
            return dict(glob)
        k = float(len(self.labels))
        prior = (counts + 1.0) / (n + k)
        home = prior
        if emb is not None and any(s is not None for s in sums):
            scores = [None] * len(self.labels)
            for c in range(len(self.labels)):
                if counts[c] > 0 and sums[c] is not None:
                    s = sums[c]
                    nn = float(np.sqrt(np.float32((s * s).sum())))
                    sn = s / nn if nn > 0 else s
                    scores[c] = self.beta * float(np.float32(np.dot(emb, sn)))
            top = max((x for x in scores if x is not None), default=0.0)
            exps = np.array([np.exp(x - top) if x is not None else 0.0 for x in scores])
            if exps.sum() > 0:
                home = 0.5 * prior + 0.5 * exps / exps.sum()
        w = n / (n + self.kappa)
        return {lab: (1 - w) * glob.get(lab, 0.0) + w * home[c] for c, lab in enumerate(self.labels)}


# ------------------------------------------------------------------------------------------ the gate, simulated
def episodes(p: np.ndarray, thr: float, vetoed: np.ndarray | None = None, M: int = MIN_CRY_PATCHES,
             hangover: float = HANGOVER) -> list[tuple[int, int]]:
    """(onset patch, end patch exclusive) of each episode; the tracker of yamnet_head.stream_events, a vetoed
    head-positive patch scoring 0 (CryGate.analyse)."""
    cry = p >= thr
    if vetoed is not None:
        cry = cry & ~vetoed
    t = yh.patch_times(len(p))
    out, pending, in_ep, last = [], 0, False, 0.0
    for i in range(len(p)):
        if in_ep:
            if cry[i]:
                last = t[i]
            elif t[i] - last >= hangover:
                in_ep = False
                out[-1][1] = i
            continue
        if not cry[i]:
            pending = 0
            continue
        pending += 1
        if pending >= M:
            in_ep, last = True, t[i]
            out.append([i - M + 1, len(p)])
            pending = 0
    return [tuple(e) for e in out]


def evidence(p: np.ndarray, thr: float, ep: tuple[int, int]) -> np.ndarray:
    """EvidenceCollector: the head-positive patches of the episode (onset on), the MAX_PATCHES highest-scoring."""
    idx = [j for j in range(ep[0], ep[1]) if p[j] >= thr]
    if len(idx) > MAX_PATCHES:
        # `keep` replaces the weakest kept patch when a stronger one comes (ties: the earlier one stays)
        kept = idx[:MAX_PATCHES]
        for j in idx[MAX_PATCHES:]:
            w = min(range(len(kept)), key=lambda a: p[kept[a]])
            if p[j] > p[kept[w]]:
                kept[w] = j
        idx = kept
    return np.array(idx, int)


class Clips:
    """Per manifest clip: head probabilities, the projected head-positive patches, the first episode's evidence."""

    def __init__(self, backend: str = "tflite", heads: str = "shipped", threshold: float | None = None):
        """heads "shipped": the shipped head scores every clip (in-sample: it was trained on all four folds);
        "oof": each clip is scored by a head of the same recipe trained on the other three folds (`fold_heads`),
        at the cross-fitted threshold of their pooled scores (the shipped head's rule). The embedding space is the
        shipped head's in both (the fold heads' standardisation differs from it only by the fold's share of data).
        threshold: overrides the threshold (a stress test: a head that fires on more classes)."""
        from safetensors import safe_open
        from safetensors.numpy import load_file
        with safe_open(str(HEAD), "np") as f:
            md = json.loads(f.metadata()["deepinfant"])
        self.head = load_file(str(HEAD))
        self.thr = float(md["gate"]["threshold"])
        self.head_version = md["version"]
        self.space = Space(self.head["norm.mean"], self.head["norm.scale"])
        self.data = fx.DEFAULT_DATA.resolve()
        self.rows = fx.read_manifest(self.data)
        cache = yh.Cache(backend)
        clips = cache.get("clips")
        missing = [r["path"] for r in self.rows if r["path"] not in clips]
        if missing:
            raise SystemExit(f"{len(missing)} clips not embedded: python3 training/yamnet_head.py embed --backend {backend} --sets clips")
        self.backend, self.heads = backend, heads
        clips = {k: v for k, v in clips.items() if k != "__version__"}
        if heads == "oof":
            probs, self.thr = fold_heads(cache, self.rows, clips)
        else:
            probs = {r["path"]: yh.head_probs(self.head, clips[r["path"]]["emb"]) for r in self.rows}
        if threshold is not None:
            self.thr = float(threshold)
        self.p, self.pos, self.U, self.E, self.ev, self.fires = {}, {}, {}, {}, {}, {}
        for r in self.rows:
            c = clips[r["path"]]
            p = probs[r["path"]]
            pos = np.flatnonzero(p >= self.thr)
            self.p[r["path"]], self.pos[r["path"]] = p, pos
            self.U[r["path"]] = self.space.project(c["emb"][pos]) if len(pos) else np.zeros((0, 1024), np.float32)
            eps = episodes(p, self.thr)
            self.fires[r["path"]] = bool(eps)
            self.ev[r["path"]] = evidence(p, self.thr, eps[0]) if eps else np.zeros(0, int)
            if eps:
                self.E[r["path"]] = c["emb"][self.ev[r["path"]]]
        self.by_path = {r["path"]: r for r in self.rows}

    def negatives(self, paths) -> np.ndarray:
        """The projected evidence patches of these clips' first episodes (what a tap on them gives the veto)."""
        V = [self.space.project(self.E[q]) for q in paths if q in self.E]
        return np.concatenate(V) if V else np.zeros((0, 1024), np.float32)

    def fires_with(self, path: str, vmask_of_pos: np.ndarray) -> bool:
        v = np.zeros(len(self.p[path]), bool)
        v[self.pos[path]] = vmask_of_pos
        return bool(episodes(self.p[path], self.thr, v))


# The fold heads' recipe: the shipped one (`lr_raw_aug_esc`) less what this checkout cannot rebuild cheaply: no
# extra_negatives.py set (Debian packages) and so no noisy copies (their noise comes partly from it).
FOLD_RECIPE = dict(head="logreg", C=0.01, raw="vetted", thr_raw="vetted", neg_boost={"esc50": 2.5}, extra=False)


def fold_heads(cache, rows, clips):
    """Out-of-fold head probabilities of every clip (head trained on the other three folds + the 24 generated
    negatives) and the cross-fitted threshold (recall 0.975 of the pooled out-of-fold clip scores of the clean and
    vetted cries, 2 patches in a row). Cached in training/cache/feedback_fold_heads.pkl."""
    import types
    path = fx.CACHE / f"feedback_fold_heads_{cache.backend}.pkl"
    if path.exists():
        d = pickle.load(open(path, "rb"))
        if d.get("recipe") == FOLD_RECIPE:
            return d["probs"], d["threshold"]
    synth = cache.fill("synth", ((f"synth/{i}", y) for i, y in enumerate(yh.synth_negatives())))
    st = types.SimpleNamespace(rows=rows, clips=clips, synth=synth, extra={}, aug={},
                               vetted={r["path"]: yh.vet_clip(clips[r["path"]]) for r in rows if r["source"] == "donateacry_raw"})
    probs = {}
    for k in yh.FOLDS:
        m = yh.fit_head(*yh.training_set(st, [f for f in yh.FOLDS if f != k], FOLD_RECIPE), FOLD_RECIPE)
        for r in rows:
            if r["fold"] == k:
                probs[r["path"]] = yh.head_probs(m, clips[r["path"]]["emb"])
    def thr_cry(r):
        return r["is_cry"] == 1 and (r["source"] != "donateacry_raw" or st.vetted[r["path"]])
    thr = yh.cry_threshold([yh.clip_score(probs[r["path"]], MIN_CRY_PATCHES) for r in rows if thr_cry(r)])
    pickle.dump(dict(recipe=FOLD_RECIPE, probs=probs, threshold=thr), open(path, "wb"))
    return probs, thr

# ------------------------------------------------------------------------------------------ veto, vectorised
class PatchSet:
    """The head-positive patches of some clips, concatenated: one matrix product per set of veto negatives."""

    def __init__(self, C: Clips, paths):
        self.C, self.paths = C, list(paths)
        U = [C.U[q] for q in self.paths]
        self.U = np.concatenate(U) if U else np.zeros((0, 1024), np.float32)
        self.off = np.concatenate([[0], np.cumsum([len(u) for u in U])]).astype(int)
        self.fires0 = np.array([C.fires[q] for q in self.paths], bool)

    def sims(self, V: np.ndarray) -> np.ndarray:
        return max_cos(self.U, V)

    def fires_after(self, sn: np.ndarray, sp: np.ndarray, sim: float, margin: float) -> np.ndarray:
        """Per clip: does an episode still start with the veto (a clip that did not fire cannot start to: the veto
        only removes cry patches)."""
        out = self.fires0.copy()
        mask = veto_mask(sn, sp, sim, margin)
        if not mask.any():
            return out
        clips = np.unique(np.searchsorted(self.off, np.flatnonzero(mask), side="right") - 1)
        for i in clips:
            if out[i]:
                out[i] = self.C.fires_with(self.paths[i], mask[self.off[i]:self.off[i + 1]])
        return out


# ------------------------------------------------------------------------------------------ (a) a home with a pet
def eligible_classes(C: Clips):
    """Non-cry classes with >= MIN_CLASS_CLIPS clips whose firing clips come from >= 2 recordings (groups)."""
    by_cls = collections.defaultdict(list)
    for r in C.rows:
        if r["is_cry"] == 0:
            by_cls[r["label"]].append(r)
    classes = []
    for lab, rs in by_cls.items():
        f = [r for r in rs if C.fires[r["path"]]]
        if len(rs) >= MIN_CLASS_CLIPS and len({r["group"] for r in f}) >= 2:
            classes.append((lab, len(rs), len(f), len({r["group"] for r in f})))
    classes.sort(key=lambda x: (-x[2], x[0]))
    return classes, by_cls


def run_pet_same(C: Clips, seed: int = 3):
    """NOT grouped (the same animal again, optimistic): per class, a recording with >= 2 firing clips; k of its
    firing clips tapped (leaving >= 1), the test side = that recording's other clips. Only to read the grouped
    figures against: ESC-50's clips of one recording are 5 s cuts of one freesound upload."""
    rng = np.random.default_rng(seed)
    by_cls = collections.defaultdict(list)
    for r in C.rows:
        if r["is_cry"] == 0:
            by_cls[r["label"]].append(r)
    cries = PatchSet(C, [r["path"] for r in C.rows if r["is_cry"] == 1])
    clean = np.array([C.by_path[q]["source"] != "donateacry_raw" for q in cries.paths])
    runs, classes = [], []
    for lab, rs in sorted(by_cls.items()):
        rec = collections.defaultdict(list)
        for r in rs:
            rec[r["group"]].append(r)
        good = sorted(g for g, v in rec.items() if sum(C.fires[r["path"]] for r in v) >= 2)
        if not good:
            continue
        cset = PatchSet(C, [r["path"] for r in rs])
        classes.append((lab, len(rs), sum(C.fires[r["path"]] for r in rs), len(good)))
        for k in KS:
            for _ in range(DRAWS):
                g = good[rng.integers(len(good))]
                fg = list(rng.permutation([r["path"] for r in rec[g] if C.fires[r["path"]]]))
                if len(fg) - 1 < k:
                    continue
                tapped = fg[:k]
                test = np.array([r["group"] == g and r["path"] not in tapped for r in rs])
                N = C.negatives(tapped)
                E0 = np.zeros((0, 1024), np.float32)
                runs.append(dict(cls=lab, k=k, k_eff=k, cset=cset, test=test, sn_c=cset.sims(N), sp_c=cset.sims(E0),
                                 sn_y=cries.sims(N), sp_y=cries.sims(E0), home=[]))
    classes.sort(key=lambda x: (-x[2], x[0]))
    return dict(classes=classes, runs=runs, cries=cries, clean=clean)


def similarity_profile(C: Clips) -> dict:
    """Why the grouped veto does little: per firing non-cry clip, the max cosine of its evidence patches (median over
    them) to the evidence of (a) another clip of the same recording, (b) a clip of another recording of its class,
    (c) any cry clip's evidence; quantiles over clips."""
    firing = [r for r in C.rows if r["is_cry"] == 0 and C.fires[r["path"]]]
    cryE = C.negatives([r["path"] for r in C.rows if r["is_cry"] == 1 and C.fires[r["path"]]])
    out = collections.defaultdict(list)
    for r in firing:
        U = C.space.project(C.E[r["path"]])
        same = [q["path"] for q in firing if q["group"] == r["group"] and q["path"] != r["path"]]
        other = [q["path"] for q in firing if q["label"] == r["label"] and q["group"] != r["group"]]
        for name, ps in (("same_recording", same), ("other_recording_same_class", other)):
            if ps:
                out[name].append(float(np.median(max_cos(U, C.negatives(ps)))))
        out["any_cry"].append(float(np.median(max_cos(U, cryE))))
    return {k: dict(n=len(v), q10=float(np.quantile(v, 0.1)), median=float(np.median(v)), q90=float(np.quantile(v, 0.9)))
            for k, v in out.items()}


def run_pet(C: Clips, confirmed: int = 0, seed: int = 0):
    """Per eligible class, k and draw: the class's recordings (groups) are shuffled; the firing clips of the first
    recordings are tapped "not a cry" until k are (whole recordings go to the tap side), the test side is every clip
    of the other recordings and must hold a firing clip (else the draw is redrawn). Similarities of the test clips'
    and of every cry clip's head-positive patches to the tapped evidence are kept; with `confirmed` > 0 also to the
    evidence of that many confirmed cries of one home baby (a donateacry device with >= confirmed + 2 firing
    clips), whose other firing clips give the home recall."""
    rng = np.random.default_rng(seed)
    classes, by_cls = eligible_classes(C)
    cries = PatchSet(C, [r["path"] for r in C.rows if r["is_cry"] == 1])
    clean = np.array([C.by_path[q]["source"] != "donateacry_raw" for q in cries.paths])
    cidx = {q: i for i, q in enumerate(cries.paths)}
    homes = collections.defaultdict(list)
    for r in C.rows:
        if r["source"] == "donateacry" and C.fires[r["path"]]:
            homes[r["group"]].append(r["path"])
    hg = sorted(g for g, v in homes.items() if len(v) >= confirmed + 2)
    runs = []
    for lab, *_ in classes:
        rs = by_cls[lab]
        cset = PatchSet(C, [r["path"] for r in rs])
        groups = sorted({r["group"] for r in rs})
        for k in KS:
            n, tries = 0, 0
            while n < DRAWS and tries < DRAWS * 50:
                tries += 1
                tapped, side = [], set()
                for g in rng.permutation(groups):
                    if len(tapped) >= k:
                        break
                    fg = [r["path"] for r in rs if r["group"] == g and C.fires[r["path"]]]
                    if fg:
                        tapped += list(rng.permutation(fg))[:k - len(tapped)]
                        side.add(g)
                test = np.array([r["group"] not in side for r in rs])
                if not tapped or not cset.fires0[test].any():
                    continue
                n += 1
                N = C.negatives(tapped)
                P, home = np.zeros((0, 1024), np.float32), []
                if confirmed:
                    g = hg[rng.integers(len(hg))]
                    conf = list(rng.permutation(homes[g]))[:confirmed]
                    P = C.negatives(conf)
                    home = [cidx[q] for q in homes[g] if q not in conf]
                runs.append(dict(cls=lab, k=k, k_eff=len(tapped), cset=cset, test=test,
                                 sn_c=cset.sims(N), sp_c=cset.sims(P), sn_y=cries.sims(N), sp_y=cries.sims(P), home=home))
    return dict(classes=classes, runs=runs, cries=cries, clean=clean)


def score_pet(P: dict, sim: float, margin: float, only_cls=None):
    """Per (class, k): mean and std over draws of the FPR on the test clips before/after, and of the recall of all /
    clean cries (and the home's other cries) after; the recall before is one number."""
    cries, clean = P["cries"], P["clean"]
    agg = collections.defaultdict(lambda: collections.defaultdict(list))
    for d in P["runs"]:
        if only_cls is not None and d["cls"] not in only_cls:
            continue
        a = agg[(d["cls"], d["k"])]
        a["fpr_before"].append(d["cset"].fires0[d["test"]].mean())
        a["fpr_after"].append(d["cset"].fires_after(d["sn_c"], d["sp_c"], sim, margin)[d["test"]].mean())
        a["k_eff"].append(d["k_eff"])
        a["n_test"].append(d["test"].sum())
        y = cries.fires_after(d["sn_y"], d["sp_y"], sim, margin)
        a["recall_all_after"].append(y.mean())
        a["recall_clean_after"].append(y[clean].mean())
        if d["home"]:
            a["recall_home_before"].append(cries.fires0[d["home"]].mean())
            a["recall_home_after"].append(y[d["home"]].mean())
    res = {}
    for key, a in agg.items():
        r = {m: (float(np.mean(v)), float(np.std(v))) for m, v in a.items()}
        r["draws"] = len(a["fpr_before"])
        r["recall_all_before"] = float(cries.fires0.mean())
        r["recall_clean_before"] = float(cries.fires0[clean].mean())
        res[key] = r
    return res


def pooled(T: dict, classes, k: int):
    vs = [T[(c, k)] for c in classes if (c, k) in T]
    if not vs:
        return None
    fb, fa = float(np.mean([v["fpr_before"][0] for v in vs])), float(np.mean([v["fpr_after"][0] for v in vs]))
    return dict(n=len(vs), fpr_before=fb, fpr_after=fa, ratio=float(np.mean([v["fpr_after"][0] / v["fpr_before"][0] for v in vs])),
                recall_drop=float(np.mean([v["recall_all_before"] - v["recall_all_after"][0] for v in vs])),
                recall_drop_max=float(np.max([v["recall_all_before"] - v["recall_all_after"][0] for v in vs])),
                halved=[c for c in classes if (c, k) in T and T[(c, k)]["fpr_after"][0] <= 0.5 * T[(c, k)]["fpr_before"][0]])


# ------------------------------------------------------------------------------------------ wrong taps
def run_wrong_tap(C: Clips, seed: int = 1):
    """Each firing cry of the cleaned donateacry set whose device has >= 3 firing clips is answered "not a cry" in
    turn (alone in the store): similarities of every clean cry's head-positive patches to its evidence, and to the
    evidence of one other firing cry of the same device confirmed with a reason (the fix)."""
    rng = np.random.default_rng(seed)
    clean = PatchSet(C, [r["path"] for r in C.rows if r["is_cry"] == 1 and r["source"] != "donateacry_raw"])
    grp = np.array([C.by_path[q]["group"] for q in clean.paths])
    dev = collections.defaultdict(list)
    for i, q in enumerate(clean.paths):
        if C.fires[q] and C.by_path[q]["source"] == "donateacry":
            dev[grp[i]].append(i)
    runs = []
    for g, ii in sorted(dev.items()):
        if len(ii) < 3:
            continue
        for w in ii:
            conf = [i for i in ii if i != w][rng.integers(len(ii) - 1)]
            runs.append(dict(tap=w, group=g, same=[i for i in ii if i not in (w, conf)], other=grp != g,
                             sn=clean.sims(C.negatives([clean.paths[w]])), sp=clean.sims(C.negatives([clean.paths[conf]]))))
    return dict(runs=runs, clean=clean)


def score_wrong_tap(W: dict, sim: float, margin: float):
    clean = W["clean"]
    none = np.full(len(clean.U), -1.0, np.float32)
    m = collections.defaultdict(list)
    for d in W["runs"]:
        tap = clean.fires_after(d["sn"], none, sim, margin)
        fix = clean.fires_after(d["sn"], d["sp"], sim, margin)
        same, other = d["same"], d["other"]
        m["same_before"].append(clean.fires0[same].mean())
        m["same_after_tap"].append(tap[same].mean())
        m["same_after_confirm"].append(fix[same].mean())
        m["same_lost_any"].append(float(tap[same].sum() < clean.fires0[same].sum()))
        m["other_before"].append(clean.fires0[other].mean())
        m["other_after_tap"].append(tap[other].mean())
        m["other_after_confirm"].append(fix[other].mean())
    r = {k: (float(np.mean(v)), float(np.std(v))) for k, v in m.items()}
    r["taps"] = len(W["runs"])
    r["devices"] = len({d["group"] for d in W["runs"]})
    return r
# ------------------------------------------------------------------------------------------ (c) reasons
def reason_examples(C: Clips, probs: dict, sources):
    """Per device (donateacry group): the firing clips with a reason label the model knows, as HomeReasonLayer
    examples (label, projected mean evidence embedding, global probabilities)."""
    dev = collections.defaultdict(list)
    skipped = collections.Counter()
    for r in C.rows:
        if r["source"] not in sources or r["is_cry"] != 1:
            continue
        if r["label"] not in REASONS:
            skipped["label not in the model"] += 1
            continue
        if not C.fires[r["path"]]:
            skipped["no episode"] += 1
            continue
        m = C.space.project(C.E[r["path"]].mean(axis=0))[0]
        dev[r["group"]].append((r["label"], m, probs[r["path"]], r["source"], r["path"]))
    return dev, skipped


def loo(dev: dict, beta: float, kappa: float, min_n: int, groups=None):
    """Leave-one-out within each device with >= min_n examples: adapted / global / device majority (ties: the
    label the global model ranks higher)."""
    y, pa, pg, pm = [], [], [], []
    for g, ex in dev.items():
        if len(ex) < min_n or (groups is not None and g not in groups):
            continue
        L = ReasonLayer(REASONS, [(e[0], e[1], e[2]) for e in ex], beta, kappa)
        for e in ex:
            y.append(e[0])
            pa.append(top_label(L.adapt(e[2], e[1], exclude=(e[0], e[1]))))
            pg.append(top_label(e[2]))
            cnt = collections.Counter(o[0] for o in ex if o is not e)
            best = max(cnt.values())
            tied = [lab for lab, c in cnt.items() if c == best]
            pm.append(max(tied, key=lambda lab: e[2].get(lab, 0)))
    return y, dict(adapted=pa, global_=pg, majority=pm)


def metrics(y, p):
    y, p = np.array(y), np.array(p)
    if not len(y):
        return dict(n=0)
    present = sorted(set(y))
    rec = [np.mean(p[y == c] == c) for c in present]
    f1 = []
    for c in present:
        tp = np.sum((p == c) & (y == c))
        prec = tp / max(1, np.sum(p == c))
        rc = tp / max(1, np.sum(y == c))
        f1.append(0 if tp == 0 else 2 * prec * rc / (prec + rc))
    return dict(n=int(len(y)), accuracy=float(np.mean(y == p)), balanced_accuracy=float(np.mean(rec)),
                macro_f1=float(np.mean(f1)), non_hungry=int(np.sum(y != "hungry")),
                non_hungry_correct=int(np.sum((y != "hungry") & (y == p))))

# ------------------------------------------------------------------------------------------ main
STRESS_THRESHOLD = 0.3
MIN_GAIN = 0.05
# read off the operating point's table (test data: optimistic), shown beside the defaults, never "chosen"
ALTERNATIVE = (0.70, 0.05)


def fmt(mv, d=3):
    return f"{mv[0]:.{d}f} ± {mv[1]:.{d}f}"


def keyed(T: dict) -> dict:
    return {f"{a}|{b}": v for (a, b), v in T.items()}


def main():
    t0 = time.time()

    def log(msg):
        print(f"{msg} ({time.time() - t0:.0f} s)", flush=True)

    scen = {"shipped": Clips(heads="shipped"), "oof": Clips(heads="oof")}
    scen["stress"] = Clips(heads="oof", threshold=STRESS_THRESHOLD)
    log("clips ready: thresholds " + ", ".join(f"{k} {v.thr:.4f}" for k, v in scen.items()))
    J = dict(head=str(HEAD.relative_to(ROOT)), head_version=scen["shipped"].head_version, backend="tflite",
             defaults=DEFAULTS, draws=DRAWS, thresholds={k: v.thr for k, v in scen.items()}, fold_recipe=FOLD_RECIPE)
    PET = {k: run_pet(C) for k, C in scen.items()}
    PET["oof_same_recording"] = run_pet_same(scen["oof"])
    PET["stress_same_recording"] = run_pet_same(scen["stress"])
    J["similarity_profile"] = similarity_profile(scen["stress"])
    PETC = {k: run_pet(C, confirmed=4, seed=2) for k, C in scen.items() if k != "shipped"}
    WT = {k: run_wrong_tap(C) for k, C in scen.items() if k != "stress"}
    log("runs: " + ", ".join(f"{k} {len(v['runs'])}" for k, v in PET.items()))
    names = [c[0] for c in PET["stress"]["classes"]]
    tune_cls, eval_cls = names[0::2], names[1::2]
    op_cls = [c[0] for c in PET["oof"]["classes"]]
    # ---------------- (b) veto grid
    grid = {}
    for sim in SIM_GRID:
        for mg in MARGIN_GRID:
            s, sc, so = score_pet(PET["stress"], sim, mg), score_pet(PETC["stress"], sim, mg), score_pet(PET["oof"], sim, mg)
            w = score_wrong_tap(WT["oof"], sim, mg)
            g = {}
            for half, cls in (("tune", tune_cls), ("eval", eval_cls)):
                for k in (4, 8):
                    g[f"{half}_k{k}"] = pooled(s, cls, k)
                    g[f"{half}_conf_k{k}"] = pooled(sc, cls, k)
            g["oof_k4"], g["oof_k8"] = pooled(so, op_cls, 4), pooled(so, op_cls, 8)
            ss = score_pet(PET["stress_same_recording"], sim, mg)
            g["same_k1"] = pooled(ss, [c[0] for c in PET["stress_same_recording"]["classes"]], 1)
            g["wt"] = w
            grid[(sim, mg)] = g
        log(f"  grid similarity {sim}")

    def admissible(g):
        w = g["wt"]
        return (all(g[x] is None or g[x]["recall_drop"] <= 0.005 for x in ("tune_k4", "tune_k8"))
                and w["other_before"][0] - w["other_after_tap"][0] <= 0.005
                and w["same_after_confirm"][0] >= w["same_before"][0] - 0.05)

    def objective(key):
        g = grid[key]
        return (round(0.5 * (g["tune_k4"]["ratio"] + g["tune_conf_k4"]["ratio"]), 2),
                key != (DEFAULTS["similarity"], DEFAULTS["margin"]), -key[0], -key[1])
    ok = [key for key, g in grid.items() if admissible(g)]
    dkey = (DEFAULTS["similarity"], DEFAULTS["margin"])
    best_ok = min(ok, key=objective) if ok else dkey
    # a setting replaces the default only when it removes >= MIN_GAIN more of the tuning classes' false alarms
    # (less than that is about one clip of one class here)
    chosen = best_ok if objective(best_ok)[0] <= objective(dkey)[0] - MIN_GAIN else dkey
    J["veto_best_admissible"] = list(best_ok)
    J["veto_grid"] = {f"{a}|{b}": v for (a, b), v in grid.items()}
    J["tune_classes"], J["eval_classes"], J["chosen_veto"] = tune_cls, eval_cls, list(chosen)
    settings = [("defaults", DEFAULTS["similarity"], DEFAULTS["margin"])]
    if tuple(chosen) != settings[0][1:]:
        settings.append(("chosen", chosen[0], chosen[1]))
    if ALTERNATIVE not in [st[1:] for st in settings]:
        settings.append(("alternative", *ALTERNATIVE))
    TAB, TABC, TABW = {}, {}, {}
    for tag, sim, mg in settings:
        for k in PET:
            TAB[(k, tag)] = score_pet(PET[k], sim, mg)
        for k in PETC:
            TABC[(k, tag)] = score_pet(PETC[k], sim, mg)
        for k in WT:
            TABW[(k, tag)] = score_wrong_tap(WT[k], sim, mg)
    J["classes"] = {k: [dict(cls=c, clips=n, firing=f, firing_recordings=g) for c, n, f, g in P["classes"]] for k, P in PET.items()}
    J["pet"] = {f"{a}|{b}": keyed(v) for (a, b), v in TAB.items()}
    J["pet_confirmed4"] = {f"{a}|{b}": keyed(v) for (a, b), v in TABC.items()}
    J["wrong_tap"] = {f"{a}|{b}": v for (a, b), v in TABW.items()}
    log("veto tables")
    # ---------------- (c) reasons
    probs = pickle.load(open(fx.CACHE / "reason_probs.pkl", "rb"))
    C = scen["shipped"]
    R = {tag: reason_examples(C, probs, src) for tag, src in
         (("cleaned", ("donateacry",)), ("raw", ("donateacry_raw",)), ("both", ("donateacry", "donateacry_raw")))}
    MIN_N = 3
    devs = sorted(g for g, ex in R["both"][0].items() if len(ex) >= MIN_N)
    perm = list(np.random.default_rng(7).permutation(devs))
    half_a, half_b = set(perm[0::2]), set(perm[1::2])
    rgrid = {}
    for b in BETA_GRID:
        for kp in KAPPA_GRID:
            y, Pp = loo(R["both"][0], b, kp, MIN_N, half_a)
            rgrid[(b, kp)] = metrics(y, Pp["adapted"])
            y, Pp = loo(R["both"][0], b, kp, MIN_N, half_b)
            rgrid[(b, kp)]["half_b"] = metrics(y, Pp["adapted"])
    dflt = (DEFAULTS["beta"], DEFAULTS["kappa"])
    best = max(rgrid, key=lambda key: (round(rgrid[key]["macro_f1"], 2), round(rgrid[key]["accuracy"], 2), key == dflt))
    RT = {}
    pars = [("defaults", dflt)] + ([("chosen", best)] if best != dflt else [])
    for name, (b, kp) in pars:
        for tag in ("cleaned", "raw", "both"):
            for min_n in (3, 5):
                y, Pp = loo(R[tag][0], b, kp, min_n)
                RT[(tag, min_n, name)] = dict(devices=sum(1 for ex in R[tag][0].values() if len(ex) >= min_n),
                                              **{m: metrics(y, Pp[m]) for m in ("adapted", "global_", "majority")})
        for half, hs in (("half A (tuning)", half_a), ("half B", half_b)):
            y, Pp = loo(R["both"][0], b, kp, MIN_N, hs)
            RT[(half, MIN_N, name)] = dict(devices=len(hs), **{m: metrics(y, Pp[m]) for m in ("adapted", "global_", "majority")})
    J["reason_grid_half_a"] = {f"{b}|{k}": v for (b, k), v in rgrid.items()}
    J["chosen_reason"] = list(best)
    J["reasons"] = {f"{a}|{b}|{c}": v for (a, b, c), v in RT.items()}
    J["reason_skipped"] = {t: dict(R[t][1]) for t in R}
    log("reasons")
    write_report(J, scen, PET, TAB, TABC, TABW, grid, chosen, tune_cls, eval_cls, op_cls, RT, rgrid, best, R, settings)
    REPORT_JSON.write_text(json.dumps(J, indent=1, default=float))
    log(f"wrote {REPORT} and {REPORT_JSON}")


def write_report(J, scen, PET, TAB, TABC, TABW, grid, chosen, tune_cls, eval_cls, op_cls, RT, rgrid, best, R, settings):
    D = DEFAULTS
    L = ["# Caregiver feedback, simulated (`training/feedback_sim.py`)", "",
         "What the node's per-home learners (issue #15) do on the labelled folds of `../shared/data`: \"not a cry\" "
         "answers feeding the veto (`HomeVeto.swift`), reason answers feeding the reason layer (`HomeReasonLayer.swift`), "
         "both reimplemented in NumPy exactly as the Swift code computes them. The gate is simulated as in "
         "`yamnet_head.py` (a patch every 0.48 s, 2 head-positive patches in a row start an episode, hang-over 4 s, no "
         "activity detector); a vetoed patch scores 0 for the tracker (`CryGate.swift`); an episode's evidence is its "
         "head-positive patches from the onset on, vetoed ones included, the 16 highest-scoring (`EpisodeEvidence.swift`); "
         "a tapped clip gives its first episode's evidence. Embeddings: the **TFLite YAMNet** (dequantised int8; cosine "
         "~0.999 to the float reference the node computes, `YAMNET_PARITY.md`), not the node's exact ones. Swift defaults "
         f"under test: veto_similarity {D['similarity']}, veto_margin {D['margin']}, reason_beta {D['beta']:g}, "
         f"reason_kappa {D['kappa']:g}. Summary and conclusions: `MODEL_CARD_FEEDBACK.md` (in docs/model-card.md).", "",
         "## The heads", "",
         "| scenario | head | threshold | recall, clean cries | recall, all 1,021 cries | FPR (869 non-cry clips) | classes eligible |",
         "|---|---|---|---|---|---|---|"]
    desc = {"shipped": "the shipped head (trained on all four folds: **in-sample** here)",
            "oof": "out-of-fold heads: per fold, the shipped recipe without the extras/noisy copies (`FOLD_RECIPE`) trained on the other three folds; cross-fitted threshold (the shipped rule)",
            "stress": f"the out-of-fold heads at threshold {STRESS_THRESHOLD} (**stress test**: a head that fires on many more classes, to have classes to tune on)"}
    for k, C in scen.items():
        P = PET[k]
        if k not in desc:
            continue
        cr = P["cries"]
        neg = [r["path"] for r in C.rows if r["is_cry"] == 0]
        L.append(f"| {k} | {desc[k]} | {C.thr:.4f} | {cr.fires0[P['clean']].mean():.3f} | {cr.fires0.mean():.3f} | "
                 f"{np.mean([C.fires[q] for q in neg]):.4f} | {len(P['classes'])} |")
    L += ["", "The shipped head leaves few false alarms on its own training data (9 clips, 4 of them cats), so the operating-point "
          "tables rest on the out-of-fold heads, which like a new home's head have never heard these recordings; every "
          "choice of parameter was made on the stress test and checked at the operating point.", "",
          "## (a) A home with a pet: k clips answered \"not a cry\"", "",
          "Per non-cry class with >= 5 clips whose firing clips (an episode starts) come from >= 2 recordings (ESC-50 group = "
          "freesound source recording; the data README's rule): the class's recordings are shuffled, the firing clips of the "
          "first ones are tapped \"not a cry\" until k are (whole recordings go to the tap side; k_eff < k when the class has "
          "too few), and the FPR (clip level: share of clips where an episode starts, veto applied per patch) is measured "
          "on every clip of the **other** recordings, which must hold a firing clip. Recall on all cry clips, before -> "
          f"after. {DRAWS} draws per class and k, mean ± std over draws. No cry confirmed in the home (the worst case for "
          "recall: nothing protects a cry). The test recordings are usually another animal of the kind (another uploader): "
          "harder than the same pet in the same room.", ""]
    for k in ("oof", "oof_same_recording", "shipped", "stress", "stress_same_recording"):
        P = PET[k]
        if k.endswith("_same_recording"):
            L += ["**Not grouped, for reading the rest:** the same recording on both sides (the tapped clip's other 5 s "
                  "cuts of one freesound upload: closest to \"the same pet again\"), out-of-fold heads.", ""]
        L += [f"### {k}: eligible classes", "", "| class | clips | firing clips (recordings) |", "|---|---|---|"]
        L += [f"| {c}{' (tuning half)' if k == 'stress' and c in tune_cls else ''} | {n} | {f} ({g}) |" for c, n, f, g in P["classes"]]
        for tag, sim, mg in settings:
            T = TAB[(k, tag)]
            L += ["", f"**{k}, veto_similarity {sim}, veto_margin {mg} ({tag})**", "",
                  "| class | k | k_eff | test clips | FPR before | FPR after | recall, all cries: before -> after | clean cries: before -> after |",
                  "|---|---|---|---|---|---|---|---|"]
            for c, *_ in P["classes"]:
                for kk in KS:
                    v = T.get((c, kk))
                    if v:
                        L.append(f"| {c} | {kk} | {v['k_eff'][0]:.1f} | {v['n_test'][0]:.1f} | {fmt(v['fpr_before'])} | {fmt(v['fpr_after'])} | "
                                 f"{v['recall_all_before']:.4f} -> {fmt(v['recall_all_after'], 4)} | {v['recall_clean_before']:.4f} -> {fmt(v['recall_clean_after'], 4)} |")
            L += ["", "| classes | k | FPR before | FPR after | mean after/before | recall drop (all cries), mean / worst class | halved |",
                  "|---|---|---|---|---|---|---|"]
            groups = [("all", [c[0] for c in P["classes"]])]
            if k == "stress":
                groups += [("tuning half", tune_cls), ("evaluation half", eval_cls)]
            for lab, cs in groups:
                for kk in KS:
                    p = pooled(T, cs, kk)
                    if p:
                        L.append(f"| {lab} ({p['n']}) | {kk} | {p['fpr_before']:.3f} | {p['fpr_after']:.3f} | {p['ratio']:.2f} | "
                                 f"{p['recall_drop']:.4f} / {p['recall_drop_max']:.4f} | {len(p['halved'])}/{p['n']} |")
            L.append("")
    L += ["### With 4 confirmed cries of the home's baby", "",
          "Same procedure, plus 4 firing cries of one donateacry device (>= 6 firing clips, drawn per draw) confirmed with a "
          "reason (veto positives: the margin at work); 'home' = that device's other firing clips.", "",
          "| scenario | setting | k | FPR before | FPR after (mean over classes) | recall drop, all cries | home's other cries: before -> after |",
          "|---|---|---|---|---|---|---|"]
    for (k, tag), T in TABC.items():
        for kk in KS:
            vs = [v for (c, x), v in T.items() if x == kk]
            if vs:
                hb = [v["recall_home_before"][0] for v in vs if "recall_home_before" in v]
                ha = [v["recall_home_after"][0] for v in vs if "recall_home_after" in v]
                L.append(f"| {k} | {tag} | {kk} | {np.mean([v['fpr_before'][0] for v in vs]):.3f} | {np.mean([v['fpr_after'][0] for v in vs]):.3f} | "
                         f"{np.mean([v['recall_all_before'] - v['recall_all_after'][0] for v in vs]):.4f} | {np.mean(hb):.3f} -> {np.mean(ha):.3f} |")
    L += ["", "## Wrong tap: a real cry answered \"not a cry\"", "",
          "Each firing cry of the cleaned donateacry set whose device (app install: same baby, same phone) has >= 3 firing "
          "clips is tapped \"not a cry\" in turn, alone in the store. Recall of the device's other firing clips (those already "
          "detected: the before column is 1) and of all clean cries of other devices; then one other cry of the same device "
          "is confirmed with a reason and both are measured again (the device's clips other than the two). Mean ± std over taps.", "",
          "| scenario | setting | taps (devices) | same device: after the wrong tap | after confirming one | taps that cost the device >= 1 cry | other devices: before | after tap | after confirm |",
          "|---|---|---|---|---|---|---|---|---|"]
    for (k, tag), w in TABW.items():
        L.append(f"| {k} | {tag} | {w['taps']} ({w['devices']}) | {fmt(w['same_after_tap'])} | {fmt(w['same_after_confirm'])} | "
                 f"{w['same_lost_any'][0]:.3f} | {w['other_before'][0]:.4f} | {fmt(w['other_after_tap'], 4)} | {fmt(w['other_after_confirm'], 4)} |")
    L += ["", "## (b) veto_similarity and veto_margin", "",
          f"Grid: similarity {list(SIM_GRID)} x margin {list(MARGIN_GRID)}. **Chosen on the stress test's tuning half of "
          f"the classes** ({', '.join(tune_cls)}: every other class in its table's order) plus the out-of-fold wrong taps "
          f"(all devices: where the margin acts). Rule: among settings with mean recall drop <= 0.005 at k = 4 and k = 8 on "
          f"the tuning classes, recall loss on other devices' cries after a wrong tap <= 0.005 and the same device's recall "
          f"after one confirmation within 0.05 of before, the lowest mean FPR after/before at k = 4 (mean of without and "
          f"with 4 confirmed cries, rounded to 0.01), ties to the Swift default, then the higher similarity and margin; the best such setting replaces the "
          f"default only when its objective is lower by >= {MIN_GAIN} (about one clip of one class). Best admissible "
          f"setting by that rule: similarity {J['veto_best_admissible'][0]}, margin {J['veto_best_admissible'][1]}. The "
          f"'alternative' setting {ALTERNATIVE} in the tables above was read off the operating-point column (test data, "
          f"so optimistic) to show the trade-off, not chosen by the rule. "
          f"Then read on the **evaluation half** ({', '.join(eval_cls)}) and at the **operating point** (out-of-fold "
          f"heads: {', '.join(op_cls)}), which played no part in the choice.", "",
          "The same-recording column (stress test, k = 1, not grouped) is shown for reading only.", "",
          "Similarity profile (stress test's firing non-cry clips; per clip the median over its evidence patches of the max "
          "cosine to the other side's evidence; 10 % / median / 90 % over clips): " + "; ".join(
              f"{k.replace('_', ' ')} {v['q10']:.2f} / {v['median']:.2f} / {v['q90']:.2f} (n {v['n']})" for k, v in J["similarity_profile"].items()) + ".", "",
          "| similarity | margin | same recording: after/before k=1 | tuning: after/before k=4 | tuning, 4 confirmed | tuning: recall drop k=4 / k=8 | evaluation: after/before k=4 | evaluation: recall drop k=4 | operating point: after/before k=4 | op.: recall drop k=4 / k=8 | wrong tap: other devices' drop | same device after tap -> after confirm |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (sim, mg), g in sorted(grid.items()):
        if False:
            pass
        mark = " **chosen**" if (sim, mg) == tuple(chosen) else ""
        mark += " (default)" if (sim, mg) == (D["similarity"], D["margin"]) else ""
        w = g["wt"]
        def q(name, key, d):
            return "-" if g.get(name) is None else f"{g[name][key]:.{d}f}"
        L.append(f"| {sim}{mark} | {mg} | {q('same_k1', 'ratio', 2)} | {q('tune_k4', 'ratio', 2)} | {q('tune_conf_k4', 'ratio', 2)} | "
                 f"{q('tune_k4', 'recall_drop', 4)} / {q('tune_k8', 'recall_drop', 4)} | {q('eval_k4', 'ratio', 2)} | {q('eval_k4', 'recall_drop', 4)} | "
                 f"{q('oof_k4', 'ratio', 2)} | {q('oof_k4', 'recall_drop', 4)} / {q('oof_k8', 'recall_drop', 4)} | "
                 f"{w['other_before'][0] - w['other_after_tap'][0]:.4f} | {w['same_after_tap'][0]:.3f} -> {w['same_after_confirm'][0]:.3f} |")
    L += ["", f"**Chosen: veto_similarity {chosen[0]}, veto_margin {chosen[1]}** (Swift defaults {D['similarity']}, {D['margin']}).", ""]
    # reasons
    L += ["## (c) Reasons: the home's answers, leave-one-out within a device", "",
          "Donate-a-Cry devices (manifest `group` = app install) with >= 3 (or >= 5) clips that start an episode (shipped "
          "head) and carry a label the reason model has (donateacry_raw's lonely, scared, cold_hot, dont_know are no answer "
          "the layer can learn: it only takes the model's labels). Each clip left out in turn: **adapted** = HomeReasonLayer "
          "over the device's other clips (projected mean evidence embedding + the global probabilities); **global** = the "
          "shipped reason CRNN alone (`reason_probs.py`, whole-clip `mean_log_prob`; **in-fold for the cleaned set**: it was "
          "trained on those clips, so its figures there are optimistic; **out-of-sample for the raw uploads**, never trained "
          "on, though some devices are in both sets); **majority** = the device's most frequent other label (ties: the "
          "global model's order). No out-of-fold reason predictions exist in this checkout (no `training/runs/`), and "
          "rebuilding them (4 CRNN trainings) did not fit this session.", "",
          "Clips left out: " + "; ".join(f"{t}: " + (", ".join(f"{k} {v}" for k, v in R[t][1].items()) or "none") for t in ("cleaned", "raw")), "",
          "| clips | >= per device | beta, kappa | devices | clips | adapted: acc / bal.acc / macro-F1 | global | majority | non-hungry right: adapted / global / majority |",
          "|---|---|---|---|---|---|---|---|---|"]

    def m3(m):
        return f"{m['accuracy']:.3f} / {m['balanced_accuracy']:.3f} / {m['macro_f1']:.3f}" if m.get("n") else "-"
    for (tag, min_n, name), v in RT.items():
        a, g, mj = v["adapted"], v["global_"], v["majority"]
        if not a.get("n"):
            continue
        bk = (D["beta"], D["kappa"]) if name == "defaults" else best
        L.append(f"| {tag} | {min_n} | {bk[0]:g}, {bk[1]:g} ({name}) | {v['devices']} | {a['n']} | {m3(a)} | {m3(g)} | {m3(mj)} | "
                 f"{a['non_hungry_correct']} / {g['non_hungry_correct']} / {mj['non_hungry_correct']} of {a['non_hungry']} |")
    L += ["", f"beta x kappa grid ({list(BETA_GRID)} x {[f'{k:g}' for k in KAPPA_GRID]}; kappa 1e9 = the global model "
          f"alone), chosen on **half A** of the devices with >= 3 clips (both sets; a fixed random half) by macro-F1 then "
          f"accuracy (rounded to 0.01; ties to the default); the half B rows above played no part in it:", "",
          "| beta | kappa | half A: acc | bal.acc | macro-F1 | half B (reading only): acc | bal.acc | macro-F1 |", "|---|---|---|---|---|---|---|---|"]
    for (b, kp), m in sorted(rgrid.items()):
        mark = " **chosen**" if (b, kp) == tuple(best) else ""
        mark += " (default)" if (b, kp) == (D["beta"], D["kappa"]) else ""
        h = m["half_b"]
        L.append(f"| {b:g}{mark} | {kp:g} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} | {m['macro_f1']:.3f} | "
                 f"{h['accuracy']:.3f} | {h['balanced_accuracy']:.3f} | {h['macro_f1']:.3f} |")
    L += ["", f"**Chosen: reason_beta {best[0]:g}, reason_kappa {best[1]:g}** (Swift defaults {D['beta']:g}, {D['kappa']:g}).", "",
          NOTES, ""]
    REPORT.write_text("\n".join(L))


NOTES = """## Limitations

- **Not a home.** ESC-50 gives 5-16 clips of 5 s per class from 2-8 recordings of *different* animals; a home's
  cat is one cat in one room with one microphone, heard again and again. Donate-a-Cry devices give 3-21 clips of
  one baby, mostly tagged `hungry`.
- **Few false alarms to remove.** At the operating point only a handful of classes fire from two recordings or
  more (cats above all); the stress test (threshold 0.3) gives more classes but other patches than the real
  threshold lets through. One clip moves a class's FPR by 0.1-0.3: read the per-class rows as anecdotes and the
  pooled rows as the measurement.
- **Heads.** The shipped head is in-sample on these folds; the out-of-fold heads lack the extras and the noisy
  copies of the shipped recipe (not rebuildable here) and score with the shipped head's embedding space.
- **Offline grid, no activity detector; TFLite embeddings** (cosine ~0.999 to the node's float ones): the
  similarities the veto compares are within about 0.001 of the node's.
- **Reasons:** the cleaned set's global probabilities are in-fold (optimistic); the raw uploads' tags are
  unchecked and many hold little crying; the probabilities are over the whole clip, the node's over the
  episode's windows; per-device majority is a strong baseline because most devices tag one reason."""


if __name__ == "__main__":
    main()
