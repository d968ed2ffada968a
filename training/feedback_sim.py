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
DRAWS = 20
MIN_CLASS_CLIPS = 5
SIM_GRID = (0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
MARGIN_GRID = (0.0, 0.025, 0.05, 0.1, 0.15, 0.2)
BETA_GRID = (1.0, 3.0, 10.0, 30.0)
KAPPA_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 1e9)
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

    def __init__(self, backend: str = "tflite"):
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
        self.backend = backend
        self.p, self.pos, self.U, self.E, self.ev, self.fires = {}, {}, {}, {}, {}, {}
        for r in self.rows:
            c = clips[r["path"]]
            p = yh.head_probs(self.head, c["emb"])
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


# ------------------------------------------------------------------------------------------ (a) a home with a pet
def fire_after(C: Clips, paths, sn_all: dict, sp_all: dict | None, sim: float, margin: float) -> np.ndarray:
    """Per clip: does an episode still start with the veto (similarities precomputed per head-positive patch)."""
    out = np.zeros(len(paths), bool)
    for i, q in enumerate(paths):
        if not C.fires[q]:
            continue  # the veto only removes cry patches: a clip that does not fire cannot start to
        sp = sp_all[q] if sp_all is not None else np.full(len(sn_all[q]), -1.0, np.float32)
        out[i] = C.fires_with(q, veto_mask(sn_all[q], sp, sim, margin))
    return out


def pet_draws(C: Clips, rng: np.random.Generator):
    """Yields per eligible class, per k, per draw: (class, k, k_eff, tapped paths, test paths). The class's groups are
    shuffled; tapped clips are the firing clips of the first groups (whole groups go to the tap side until k firing
    clips are taken, the last group's clips in random order), the test side is every clip of the remaining groups,
    which must hold at least one firing clip (else the draw is skipped: nothing to measure)."""
    neg = [r for r in C.rows if r["is_cry"] == 0]
    by_cls = collections.defaultdict(list)
    for r in neg:
        by_cls[r["label"]].append(r)
    classes = []
    for lab, rs in by_cls.items():
        f = [r for r in rs if C.fires[r["path"]]]
        fg = {r["group"] for r in f}
        if len(rs) >= MIN_CLASS_CLIPS and len(fg) >= 2:
            classes.append((lab, len(rs), len(f), len(fg)))
    classes.sort(key=lambda x: (-x[2], x[0]))
    plan = {}
    for lab, n, nf, ng in classes:
        rs = by_cls[lab]
        groups = sorted({r["group"] for r in rs})
        for k in KS:
            draws = []
            tries = 0
            while len(draws) < DRAWS and tries < DRAWS * 20:
                tries += 1
                order = list(rng.permutation(groups))
                tapped, side = [], set()
                for g in order:
                    if len(tapped) >= k:
                        break
                    fg = [r["path"] for r in rs if r["group"] == g and C.fires[r["path"]]]
                    if not fg:
                        continue
                    fg = list(rng.permutation(fg))
                    tapped += fg[:k - len(tapped)]
                    side.add(g)
                test = [r["path"] for r in rs if r["group"] not in side]
                if not tapped or not any(C.fires[q] for q in test):
                    continue
                draws.append((tapped, test))
            plan[(lab, k)] = draws
    return classes, plan


def run_pet(C: Clips, confirmed: int = 0, seed: int = 0):
    """Every (class, k, draw): similarities of the test clips' and of every cry clip's head-positive patches to the
    tapped clips' evidence (and, with `confirmed` > 0, to the evidence of that many confirmed cries of one home
    baby: a donateacry device with >= confirmed + 2 firing clips; its other clips count in the home recall)."""
    rng = np.random.default_rng(seed)
    classes, plan = pet_draws(C, rng)
    cries = [r["path"] for r in C.rows if r["is_cry"] == 1]
    clean = [q for q in cries if C.by_path[q]["source"] != "donateacry_raw"]
    homes = collections.defaultdict(list)
    for r in C.rows:
        if r["source"] == "donateacry" and C.fires[r["path"]]:
            homes[r["group"]].append(r["path"])
    homes = {g: v for g, v in homes.items() if len(v) >= confirmed + 2}
    hg = sorted(homes)
    out = []
    for (lab, k), draws in plan.items():
        for tapped, test in draws:
            N = C.negatives(tapped)
            P = np.zeros((0, 1024), np.float32)
            home_other = []
            if confirmed:
                g = hg[rng.integers(len(hg))]
                conf = list(rng.permutation(homes[g]))[:confirmed]
                P = C.negatives(conf)
                home_other = [q for q in homes[g] if q not in conf]
            keys = set(test) | set(cries)
            sn = {q: max_cos(C.U[q], N) for q in keys}
            sp = {q: max_cos(C.U[q], P) for q in keys}
            out.append(dict(cls=lab, k=k, k_eff=len(tapped), tapped=tapped, test=test, sn=sn, sp=sp, home_other=home_other))
    return classes, out, cries, clean


def score_pet(C: Clips, runs, cries, clean, sim: float, margin: float, only_cls=None):
    """Per (class, k): mean/std over draws of FPR before/after on the test clips, recall before/after (all cries,
    clean cries, home's other cries)."""
    rec_before_all = np.mean([C.fires[q] for q in cries])
    rec_before_clean = np.mean([C.fires[q] for q in clean])
    agg = collections.defaultdict(lambda: collections.defaultdict(list))
    for d in runs:
        if only_cls is not None and d["cls"] not in only_cls:
            continue
        key = (d["cls"], d["k"])
        fb = np.mean([C.fires[q] for q in d["test"]])
        fa = fire_after(C, d["test"], d["sn"], d["sp"], sim, margin).mean()
        ca = fire_after(C, cries, d["sn"], d["sp"], sim, margin)
        a = agg[key]
        a["fpr_before"].append(fb)
        a["fpr_after"].append(fa)
        a["k_eff"].append(d["k_eff"])
        a["n_test"].append(len(d["test"]))
        a["recall_all_after"].append(ca.mean())
        cmap = dict(zip(cries, ca))
        a["recall_clean_after"].append(np.mean([cmap[q] for q in clean]))
        if d["home_other"]:
            a["recall_home_before"].append(np.mean([C.fires[q] for q in d["home_other"]]))
            a["recall_home_after"].append(np.mean([cmap[q] for q in d["home_other"]]))
    res = {}
    for key, a in agg.items():
        r = {m: (float(np.mean(v)), float(np.std(v))) for m, v in a.items()}
        r["draws"] = len(a["fpr_before"])
        r["recall_all_before"] = float(rec_before_all)
        r["recall_clean_before"] = float(rec_before_clean)
        res[key] = r
    return res


# ------------------------------------------------------------------------------------------ wrong taps
def run_wrong_tap(C: Clips, seed: int = 1):
    """Each firing clean cry (donateacry cleaned set, of a device with >= 3 firing clips) answered "not a cry" in
    turn: similarities of every clean cry's head-positive patches to its evidence, and to one other firing cry of the
    same device confirmed with a reason (the fix)."""
    rng = np.random.default_rng(seed)
    clean = [r["path"] for r in C.rows if r["is_cry"] == 1 and r["source"] != "donateacry_raw"]
    dev = collections.defaultdict(list)
    for q in clean:
        if C.fires[q] and C.by_path[q]["source"] == "donateacry":
            dev[C.by_path[q]["group"]].append(q)
    out = []
    for g, qs in sorted(dev.items()):
        if len(qs) < 3:
            continue
        for w in qs:
            others = [q for q in qs if q != w]
            conf = others[rng.integers(len(others))]
            N, P = C.negatives([w]), C.negatives([conf])
            sn = {q: max_cos(C.U[q], N) for q in clean}
            sp = {q: max_cos(C.U[q], P) for q in clean}
            out.append(dict(tap=w, group=g, confirmed=conf, same=[q for q in qs if q not in (w, conf)], sn=sn, sp=sp))
    return out, clean


def score_wrong_tap(C: Clips, runs, clean, sim: float, margin: float):
    none = {q: np.full(len(C.U[q]), -1.0, np.float32) for q in clean}
    m = collections.defaultdict(list)
    for d in runs:
        same = d["same"]
        other = [q for q in clean if C.by_path[q]["group"] != d["group"]]
        fo_before = np.mean([C.fires[q] for q in other])
        fs_before = np.mean([C.fires[q] for q in same])
        a_same = fire_after(C, same, d["sn"], none, sim, margin).mean()
        a_other = fire_after(C, other, d["sn"], none, sim, margin).mean()
        c_same = fire_after(C, same, d["sn"], d["sp"], sim, margin).mean()
        c_other = fire_after(C, other, d["sn"], d["sp"], sim, margin).mean()
        m["same_before"].append(fs_before)
        m["same_after_tap"].append(a_same)
        m["same_after_confirm"].append(c_same)
        m["other_before"].append(fo_before)
        m["other_after_tap"].append(a_other)
        m["other_after_confirm"].append(c_other)
        m["same_lost_any"].append(float(a_same < fs_before))
    r = {k: (float(np.mean(v)), float(np.std(v))) for k, v in m.items()}
    r["taps"] = len(runs)
    r["devices"] = len({d["group"] for d in runs})
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
def fmt(mv, d=3):
    return f"{mv[0]:.{d}f} ± {mv[1]:.{d}f}"


def main():
    t0 = time.time()
    C = Clips("tflite")
    print(f"clips ready ({time.time() - t0:.0f} s); threshold {C.thr:.4f}", flush=True)
    J = dict(head=str(HEAD.relative_to(ROOT)), head_version=C.head_version, threshold=C.thr, backend=C.backend,
             defaults=DEFAULTS, draws=DRAWS)
    L = []
    # ---------------- (a) pets
    classes, runs, cries, clean = run_pet(C)
    print(f"pet runs: {len(runs)} ({time.time() - t0:.0f} s)", flush=True)
    names = [c[0] for c in classes]
    tune_cls, eval_cls = names[0::2], names[1::2]
    # ---------------- wrong taps
    wt_runs, wt_clean = run_wrong_tap(C)
    print(f"wrong-tap runs: {len(wt_runs)} ({time.time() - t0:.0f} s)", flush=True)
    # ---------------- (b) the grid, on the tuning classes (and the wrong taps, which every class shares)
    grid = {}
    for sim in SIM_GRID:
        for mg in MARGIN_GRID:
            s = score_pet(C, runs, cries, clean, sim, mg, only_cls=set(tune_cls))
            k4 = [v for (c, k), v in s.items() if k == 4]
            w = score_wrong_tap(C, wt_runs, wt_clean, sim, mg)
            grid[(sim, mg)] = dict(
                fpr_ratio_k4=float(np.mean([v["fpr_after"][0] / v["fpr_before"][0] for v in k4])),
                recall_drop_k4=float(np.mean([v["recall_all_before"] - v["recall_all_after"][0] for v in k4])),
                recall_drop_k8=float(np.mean([v["recall_all_before"] - v["recall_all_after"][0] for (c, k), v in s.items() if k == 8])),
                wt_other_drop=w["other_before"][0] - w["other_after_tap"][0],
                wt_same_after_tap=w["same_after_tap"][0], wt_same_after_confirm=w["same_after_confirm"][0],
                wt_same_before=w["same_before"][0])
        print(f"  grid sim {sim} done ({time.time() - t0:.0f} s)", flush=True)
    ok = {key: g for key, g in grid.items() if g["recall_drop_k4"] <= 0.005 and g["recall_drop_k8"] <= 0.005
          and g["wt_other_drop"] <= 0.005 and g["wt_same_after_confirm"] >= g["wt_same_before"] - 0.05}
    chosen = min(ok, key=lambda key: (round(ok[key]["fpr_ratio_k4"], 3), -key[1], -key[0])) if ok else (DEFAULTS["similarity"], DEFAULTS["margin"])
    J["grid"] = {f"{a}|{b}": v for (a, b), v in grid.items()}
    J["tune_classes"], J["eval_classes"], J["chosen_veto"] = tune_cls, eval_cls, list(chosen)
    # ---------------- the tables at the defaults and at the chosen values
    settings = [("defaults", DEFAULTS["similarity"], DEFAULTS["margin"])]
    if tuple(chosen) != (DEFAULTS["similarity"], DEFAULTS["margin"]):
        settings.append(("chosen", chosen[0], chosen[1]))
    pet_tables, wt_tables = {}, {}
    for tag, sim, mg in settings:
        pet_tables[tag] = score_pet(C, runs, cries, clean, sim, mg)
        wt_tables[tag] = score_wrong_tap(C, wt_runs, wt_clean, sim, mg)
    print(f"tables ({time.time() - t0:.0f} s)", flush=True)
    # with 4 confirmed cries of a home baby (the margin at work), defaults only
    _, runs_c, _, _ = run_pet(C, confirmed=4, seed=2)
    pet_conf = {tag: score_pet(C, runs_c, cries, clean, sim, mg) for tag, sim, mg in settings}
    print(f"confirmed-cry pet runs ({time.time() - t0:.0f} s)", flush=True)
    J["classes"] = [dict(cls=c, clips=n, firing=f, firing_groups=g) for c, n, f, g in classes]
    J["pet"] = {tag: {f"{c}|{k}": v for (c, k), v in t.items()} for tag, t in pet_tables.items()}
    J["pet_confirmed4"] = {tag: {f"{c}|{k}": v for (c, k), v in t.items()} for tag, t in pet_conf.items()}
    J["wrong_tap"] = wt_tables
    # ---------------- (c) reasons
    probs = pickle.load(open(fx.CACHE / "reason_probs.pkl", "rb"))
    R = {}
    for tag, sources in (("cleaned", ("donateacry",)), ("raw", ("donateacry_raw",)), ("both", ("donateacry", "donateacry_raw"))):
        dev, skipped = reason_examples(C, probs, sources)
        R[tag] = dict(dev=dev, skipped=dict(skipped))
    # tuning of beta/kappa: devices of 'both' with >= 3 examples split in two halves by a fixed shuffle
    MIN_N = 3
    devs = sorted(g for g, ex in R["both"]["dev"].items() if len(ex) >= MIN_N)
    perm = list(np.random.default_rng(7).permutation(devs))
    half_a, half_b = set(perm[0::2]), set(perm[1::2])
    rgrid = {}
    for b in BETA_GRID:
        for kp in KAPPA_GRID:
            y, P = loo(R["both"]["dev"], b, kp, MIN_N, half_a)
            rgrid[(b, kp)] = metrics(y, P["adapted"])
    best = max(rgrid, key=lambda key: (round(rgrid[key]["macro_f1"], 3), round(rgrid[key]["accuracy"], 3), key == (DEFAULTS["beta"], DEFAULTS["kappa"])))
    J["reason_grid_half_a"] = {f"{b}|{k}": v for (b, k), v in rgrid.items()}
    J["chosen_reason"] = list(best)
    RT = {}
    for tag in ("cleaned", "raw", "both"):
        for min_n in (3, 5):
            for name, (b, kp) in (("defaults", (DEFAULTS["beta"], DEFAULTS["kappa"])), ("chosen", best)):
                y, P = loo(R[tag]["dev"], b, kp, min_n)
                ndev = sum(1 for ex in R[tag]["dev"].values() if len(ex) >= min_n)
                RT[(tag, min_n, name)] = dict(devices=ndev, adapted=metrics(y, P["adapted"]), global_=metrics(y, P["global_"]),
                                              majority=metrics(y, P["majority"]))
    for name, (b, kp) in (("defaults", (DEFAULTS["beta"], DEFAULTS["kappa"])), ("chosen", best)):
        y, P = loo(R["both"]["dev"], b, kp, MIN_N, half_b)
        RT[("half_b", MIN_N, name)] = dict(devices=len(half_b), adapted=metrics(y, P["adapted"]), global_=metrics(y, P["global_"]),
                                           majority=metrics(y, P["majority"]))
    J["reasons"] = {f"{a}|{b}|{c}": v for (a, b, c), v in RT.items()}
    J["reason_skipped"] = {t: R[t]["skipped"] for t in R}
    print(f"reasons ({time.time() - t0:.0f} s)", flush=True)
    write_report(J, classes, pet_tables, pet_conf, wt_tables, grid, chosen, tune_cls, eval_cls, RT, rgrid, best, R, settings)
    REPORT_JSON.write_text(json.dumps(J, indent=1, default=float))
    print(f"wrote {REPORT} and {REPORT_JSON} ({time.time() - t0:.0f} s)")


def write_report(J, classes, pet_tables, pet_conf, wt_tables, grid, chosen, tune_cls, eval_cls, RT, rgrid, best, R, settings):
    L = ["# Caregiver feedback, simulated (`training/feedback_sim.py`)", "",
         f"What the node's per-home learners (issue #15) do on the labelled folds. Cry head: the shipped "
         f"`deepinfant-cry-head` {J['head_version']} at its threshold {J['threshold']:.4f}, 2 patches in a row, hang-over 4 s, "
         f"simulated as in `yamnet_head.py` (no activity detector). Embeddings: the **TFLite** YAMNet (dequantised int8; "
         f"cosine ~0.999 to the float reference the node computes). The veto and the reason layer are NumPy copies of "
         f"`HomeVeto.swift` / `HomeReasonLayer.swift`; an episode's evidence is its head-positive patches from the onset "
         f"on, at most 16 (`EpisodeEvidence.swift`). Swift defaults: veto_similarity {DEFAULTS['similarity']}, veto_margin "
         f"{DEFAULTS['margin']}, reason_beta {DEFAULTS['beta']:g}, reason_kappa {DEFAULTS['kappa']:g}.", "",
         "**Caveat that runs through all of it:** the shipped head was trained on these very folds (all four), so its "
         "false alarms here are the in-sample ones (the hard cases it could not fit away), and the reason model saw the "
         "cleaned donateacry clips (in-fold). Counts are small: a class has 5-16 clips from 2-8 recordings.", "",
         "## (a) A home with a pet: k clips answered \"not a cry\"", "",
         "Per non-cry class with >= 5 clips whose false alarms (clips where an episode starts) come from >= 2 recordings "
         "(ESC-50 group = freesound source recording): the class's recordings are shuffled; k firing clips of the first "
         "recordings are tapped \"not a cry\" (their first episode's evidence becomes veto negatives); the FPR is measured "
         "on every clip of the class's *other* recordings (none on both sides), the recall on all cry clips "
         f"({len([r for r in J.get('classes', [])])} classes; {DRAWS} draws each, mean ± std over draws; k_eff < k when the "
         "class has fewer firing clips outside the test side). No confirmed cries in the home (the worst case for recall: "
         "nothing protects a cry). The other recordings are usually another animal of the kind (another freesound "
         "uploader), a harder test than the same pet again.", "",
         "| class | clips | firing clips (recordings) |", "|---|---|---|"]
    L += [f"| {c} | {n} | {f} ({g}) |" for c, n, f, g in classes]
    for tag, sim, mg in settings:
        T = pet_tables[tag]
        L += ["", f"### veto_similarity {sim}, veto_margin {mg} ({tag})", "",
              "| class | k | k_eff | test clips | FPR before | FPR after | recall all cries before -> after | clean cries before -> after |",
              "|---|---|---|---|---|---|---|---|"]
        for c, *_ in classes:
            for k in KS:
                v = T.get((c, k))
                if not v:
                    continue
                L.append(f"| {c}{' (tuning)' if c in tune_cls else ''} | {k} | {v['k_eff'][0]:.1f} | {v['n_test'][0]:.1f} | {fmt(v['fpr_before'])} | "
                         f"{fmt(v['fpr_after'])} | {v['recall_all_before']:.4f} -> {fmt(v['recall_all_after'], 4)} | "
                         f"{v['recall_clean_before']:.4f} -> {fmt(v['recall_clean_after'], 4)} |")
        L += ["", "Pooled (mean over classes of the per-class means):", "", "| classes | k | FPR before | FPR after | after/before | recall drop (all cries) |", "|---|---|---|---|---|---|"]
        for lab, cs in (("all", [c[0] for c in classes]), ("tuning half", tune_cls), ("evaluation half", eval_cls)):
            for k in KS:
                vs = [T[(c, k)] for c in cs if (c, k) in T]
                if not vs:
                    continue
                fb, fa = np.mean([v["fpr_before"][0] for v in vs]), np.mean([v["fpr_after"][0] for v in vs])
                dr = np.mean([v["recall_all_before"] - v["recall_all_after"][0] for v in vs])
                L.append(f"| {lab} ({len(vs)}) | {k} | {fb:.3f} | {fa:.3f} | {fa / fb:.2f} | {dr:.4f} |")
        halved = [c for c, *_ in classes if (c, 4) in T and T[(c, 4)]["fpr_after"][0] <= 0.5 * T[(c, 4)]["fpr_before"][0]]
        L += ["", f"Issue target (false alarms halved after 4 taps, recall within 0.005): met for {len(halved)} of "
              f"{sum(1 for c, *_ in classes if (c, 4) in T)} classes ({', '.join(halved) or 'none'}).", ""]
    L += ["### With 4 confirmed cries of the home's baby (the margin at work)", "",
          "Same draws, plus 4 firing cries of one donateacry device (>= 6 firing clips) confirmed with a reason (positives); "
          "'home' = that device's other firing clips.", "",
          "| setting | k | FPR before | FPR after (mean over classes) | recall all cries drop | home's other cries before -> after |", "|---|---|---|---|---|---|"]
    for tag, sim, mg in settings:
        T = pet_conf[tag]
        for k in KS:
            vs = [v for (c, kk), v in T.items() if kk == k]
            if not vs:
                continue
            L.append(f"| {tag} ({sim}, {mg}) | {k} | {np.mean([v['fpr_before'][0] for v in vs]):.3f} | {np.mean([v['fpr_after'][0] for v in vs]):.3f} | "
                     f"{np.mean([v['recall_all_before'] - v['recall_all_after'][0] for v in vs]):.4f} | "
                     f"{np.mean([v['recall_home_before'][0] for v in vs if 'recall_home_before' in v]):.3f} -> "
                     f"{np.mean([v['recall_home_after'][0] for v in vs if 'recall_home_after' in v]):.3f} |")
    L += ["", "## Wrong tap: a real cry answered \"not a cry\"", "",
          "Each firing cry of the cleaned donateacry set whose device has >= 3 firing clips is tapped \"not a cry\" in turn "
          "(alone in the store); recall of the device's other firing clips (same baby, same phone) and of all clean cries "
          "of other devices; then one other cry of the same device is confirmed with a reason (its evidence becomes "
          "positives) and the same recall is measured again (on the device's clips other than both). Mean ± std over taps.", "",
          "| setting | taps (devices) | same device: before | after the wrong tap | after confirming one | share of taps that cost the device a cry | other devices: before | after tap | after confirm |",
          "|---|---|---|---|---|---|---|---|---|"]
    for tag, sim, mg in settings:
        w = wt_tables[tag]
        L.append(f"| {tag} ({sim}, {mg}) | {w['taps']} ({w['devices']}) | {fmt(w['same_before'])} | {fmt(w['same_after_tap'])} | "
                 f"{fmt(w['same_after_confirm'])} | {w['same_lost_any'][0]:.3f} | {fmt(w['other_before'], 4)} | {fmt(w['other_after_tap'], 4)} | "
                 f"{fmt(w['other_after_confirm'], 4)} |")
    L += ["", "## (b) veto_similarity / veto_margin", "",
          f"Grid over similarity {list(SIM_GRID)} x margin {list(MARGIN_GRID)}. **Chosen on the tuning half of the classes** "
          f"({', '.join(tune_cls)}: every other class in the order of the table above) and on the wrong taps (all devices; "
          f"the wrong taps are the only place the margin acts when the home has confirmed no cry). Rule: the lowest mean "
          f"FPR after/before at k = 4 on the tuning classes among settings with recall drop <= 0.005 at k = 4 and 8, "
          f"recall loss on other devices' cries after a wrong tap <= 0.005, and the same device's recall after one "
          f"confirmation within 0.05 of before; ties to the larger margin, then the larger similarity. Reported on the "
          f"evaluation half ({', '.join(eval_cls)}) in the pooled tables above.", "",
          "| similarity | margin | FPR after/before k=4 (tuning classes) | recall drop k=4 | k=8 | wrong tap: other devices' drop | same device after tap | after confirm |",
          "|---|---|---|---|---|---|---|---|"]
    for (sim, mg), g in sorted(grid.items()):
        mark = " **chosen**" if (sim, mg) == tuple(chosen) else (" (default)" if (sim, mg) == (DEFAULTS["similarity"], DEFAULTS["margin"]) else "")
        L.append(f"| {sim}{mark} | {mg} | {g['fpr_ratio_k4']:.3f} | {g['recall_drop_k4']:.4f} | {g['recall_drop_k8']:.4f} | "
                 f"{g['wt_other_drop']:.4f} | {g['wt_same_after_tap']:.3f} | {g['wt_same_after_confirm']:.3f} (before {g['wt_same_before']:.3f}) |")
    L += ["", f"Chosen: veto_similarity {chosen[0]}, veto_margin {chosen[1]} (Swift default {DEFAULTS['similarity']}, {DEFAULTS['margin']}).", ""]
    # reasons
    L += ["## (c) Reasons: the home's answers, leave-one-out within a device", "",
          "Donate-a-Cry devices (the manifest `group` of donateacry / donateacry_raw = the app install) with >= 3 (>= 5) "
          "labelled clips that start an episode and carry a label the reason model knows (raw tags lonely, scared, "
          "cold_hot, dont_know are not answers the node accepts for the layer). Each clip left out in turn: "
          "**adapted** = HomeReasonLayer over the device's other clips (projected mean evidence embedding + the global "
          "probabilities); **global** = the shipped reason CRNN alone (`reason_probs.py`: whole-clip `mean_log_prob`; "
          "**in-fold for the cleaned set** -- it was trained on those clips, so the global figures there are "
          "optimistic -- and **out-of-sample for the raw uploads**, which it never saw); **majority** = the device's "
          "most frequent other label (ties: the global model's order).", "",
          "Skipped clips: " + "; ".join(f"{t}: {', '.join(f'{k} {v}' for k, v in R[t]['skipped'].items()) or 'none'}" for t in ("cleaned", "raw")), "",
          "| clips | min per device | setting | devices | clips | adapted acc / bal.acc / macro-F1 | global | majority | non-hungry right (adapted / global / majority) |",
          "|---|---|---|---|---|---|---|---|---|"]

    def m3(m):
        return f"{m['accuracy']:.3f} / {m['balanced_accuracy']:.3f} / {m['macro_f1']:.3f}" if m.get("n") else "-"
    for (tag, min_n, name), v in RT.items():
        a, g, mj = v["adapted"], v["global_"], v["majority"]
        if not a.get("n"):
            continue
        L.append(f"| {tag} | {min_n} | {name} | {v['devices']} | {a['n']} | {m3(a)} | {m3(g)} | {m3(mj)} | "
                 f"{a['non_hungry_correct']} / {g['non_hungry_correct']} / {mj['non_hungry_correct']} of {a['non_hungry']} |")
    L += ["", f"beta/kappa grid ({list(BETA_GRID)} x {list(KAPPA_GRID)}; kappa 1e9 = the global model alone), chosen on "
          f"**half A** of the devices with >= 3 clips (both sets, a fixed random half) by macro-F1 then accuracy; the "
          f"`half_b` rows above are the other half:", "",
          "| beta | kappa | acc | bal.acc | macro-F1 |", "|---|---|---|---|---|"]
    for (b, kp), m in sorted(rgrid.items()):
        mark = " **chosen**" if (b, kp) == tuple(best) else (" (default)" if (b, kp) == (DEFAULTS["beta"], DEFAULTS["kappa"]) else "")
        L.append(f"| {b:g}{mark} | {kp:g} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} | {m['macro_f1']:.3f} |")
    L += ["", f"Chosen: reason_beta {best[0]:g}, reason_kappa {best[1]:g} (Swift default {DEFAULTS['beta']:g}, {DEFAULTS['kappa']:g}).", ""]
    L += [NOTES, ""]
    REPORT.write_text("\n".join(L))


NOTES = """## Limitations

- **Not a home.** ESC-50 gives a handful of 5 s clips per class from 2-8 recordings of different animals; a
  home's cat is one cat, heard again and again in one room with one microphone, which the veto should recognise
  more easily than "another cat from freesound". Donate-a-Cry devices give 3-21 clips of one baby (same phone),
  mostly `hungry`.
- **In-sample head.** The shipped head was trained on all four visible folds: the false alarms measured are the
  ones it kept despite training on them; a new home's sounds are out-of-sample (more false alarms to remove).
- **Offline grid, no activity detector**, TFLite embeddings instead of the node's float ones (cosine ~0.999):
  the veto's similarities are within ~0.001 of the node's.
- **Reasons**: the cleaned set's global probabilities are in-fold (optimistic); the raw uploads' labels are
  unchecked parent tags and many clips hold little crying; the global probabilities are over the whole clip, the
  node's over the episode's windows.
- Every tuned value was chosen on half of the classes / devices; the other half is reported, but with so few
  clips a difference of one clip moves a class's FPR by 0.1-0.2."""


if __name__ == "__main__":
    main()
