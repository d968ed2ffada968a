"""Train and cross-validate the DeepInfant CRNN models (cry reason, cry detector) and the baselines.

    python3 training/train.py --all [--data ../shared/data]     # everything: cache, CV, final models, export, report

Stages (each writes training/runs/<stage>/result.json and is skipped when that file exists, unless --force):
    cry_cv             4-fold grouped CV of the cry detector (is_cry, all sources); its fold models provide the
                       pre-trained conv trunk of the reason model for the same fold
    reason_cv          4-fold grouped CV of the reason CRNN (donateacry only), trunk from cry_cv, balanced sampling
    reason_scratch_cv  same, randomly initialised (pre-training ablation)
    reason_sqrt_cv     same as reason_cv with sqrt-tempered class sampling
    reason_noaug_cv    the shipped reason recipe without the augmented copies (augmentation ablation)
    gate_cv            every cry recipe (cry_cv and CRY_VARIANTS, trained if needed) through the real gate with
                       eval_gate_cv.py (needs `swift build -c release`); decides the shipped cry recipe
    baselines          majority class; log-mel/MFCC statistics + logistic regression (class_weight balanced)
    final_cry          cry detector on all four folds (reason trunk; exported as the gate when cry_cv is the
                       shipped cry recipe, otherwise the shipped recipe is trained and exported as well)
    final_reason       the shipped reason recipe (choose_reason) on all four folds; logit adjustment and
                       temperature from its OOF predictions folded into `out`; export
    report             training/report.py: REPORT.md, confusion-matrix PNGs, docs/model-card.md
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from crnn import CRNN  # noqa: E402
import features as fx  # noqa: E402

REPO = HERE.parent
RUNS = HERE / "runs"
EXPORT_DIR = REPO / "models"
REASONS = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
CRY_LABELS = ["not_cry", "cry"]
WIN, HOP = 94, 31
MIN_FRAMES = 8  # 2 ** len(conv_channels): shorter inputs are padded with silence (-100 dB)
FOLDS = [1, 2, 3, 4]

ARCH = dict(conv_channels=(16, 32, 64), lstm_hidden=64, dense=(32,), dropout=0.3, pooling="mean")

# recipes (chosen by grouped CV; see REPORT.md)
REASON_CFG = dict(task="reason", epochs=25, steps_per_epoch=24, batch=64, max_lr=1e-2, div_factor=100,
                  class_power=0.0, label_smoothing=0.1, aug=True, init="cry_trunk", gain_db=6.0, seed=0)
# reason-model variants compared under grouped CV (overrides of REASON_CFG); SHIPPED picks the one exported
REASON_VARIANTS = {
    "reason_cv": {},
    "reason_scratch_cv": dict(init=None),
    "reason_sqrt_cv": dict(class_power=0.5),
}
# a frozen-trunk variant (dict(freeze_trunk=True)) is implemented but was not run for lack of CPU time


def choose_reason(results: dict) -> str:
    """The shipped reason recipe: best cross-fitted (logit-adjusted) macro-F1, then balanced accuracy (both to 3
    decimals), then the lowest ECE (calibration decides between recipes the class metrics cannot separate)."""
    import metrics as M
    def key(name):
        f = M.summarise_reason(results[name])["adjusted"]["folds"]
        return (round(f["macro_f1"]["mean"], 3), round(f["balanced_accuracy"]["mean"], 3), -f["ece"]["mean"])
    return max(results, key=key)


SHIPPED_REASON = "reason_cv"  # replaced by choose_reason() once the variants' CV results exist
CRY_CFG = dict(task="cry", epochs=25, steps_per_epoch=16, batch=64, max_lr=1e-2, div_factor=100,
               class_power=0.0, label_smoothing=0.05, aug=True, init=None, gain_db=10.0, seed=0)
# cry2 + the extras of extra_negatives.py sampled at half weight (the shipped cry recipe since cry 1.3.0)
EXTRAS_HALF = {"esc50": 2.5, "extra_speech": 0.5, "extra_sfx": 0.5, "extra_music": 0.5}
CRY13 = dict(steps_per_epoch=24, neg_source_boost=EXTRAS_HALF, extra_negatives=True)
# cry-detector variants: cry_cv (CRY_CFG) always runs (its fold models pre-train the reason trunk)
CRY_VARIANTS = {
    "cry2_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}),
    # more steps; cry3 adds feature-domain augmentation of every crop (negatives included) and negative mixing
    "cry_long_cv": dict(steps_per_epoch=40),
    "cry3_cv": dict(steps_per_epoch=40, feat_aug=True, neg_mix=0.3),
    # cry2's up-weighted ESC-50 negatives with more steps; and with the paper-size network
    "cry4_cv": dict(steps_per_epoch=40, neg_source_boost={"esc50": 2.5}),
    # stronger ESC-50 up-weighting; and cry2 with hard-negative mining (negatives re-weighted by their p(cry))
    "cry6_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 5.0}),
    "cry7_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, hard_negatives=True),
    # cry2 again with another seed: how much of the differences between recipes is seed noise
    "cry2_seed1_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, seed=1),
    # cry2 with audio-domain copies of the non-speech negatives (pitch, stretch, noise, as the cries get)
    "cry8_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, neg_aug=True),
    # the same without noise in the negatives' copies (cry8 lost recall with noise mixed into cries)
    "cry9_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, neg_aug=True, neg_aug_noise=False),
    # cry2 plus continuous speech as negatives (120 six-second streams of one training-fold speaker's clips)
    "cry10_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, speech_streams=120),
    # cry9 again with another seed (cry9 differs from cry2 by about the seed noise measured on cry2)
    "cry9_seed1_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, neg_aug=True, neg_aug_noise=False, seed=1),
    # cry2 plus not-cry audio from Debian packages (speech in 12+ languages, animal and household sounds, music)
    "cry11_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5}, extra_negatives=True),
    # cry11 with a third more steps (more negatives to learn from); and with the extras sampled half as often
    "cry12_cv": dict(steps_per_epoch=32, neg_source_boost={"esc50": 2.5}, extra_negatives=True),
    "cry13_cv": CRY13,
    # cry13 with the second set of extras (~350 more sound effects: qabcs noises, Scratch's sound library); two seeds
    "cry14_cv": dict(CRY13, neg_source_boost=dict(EXTRAS_HALF, extra_sfx2=0.5), extra_negatives=2),
    "cry14_seed1_cv": dict(CRY13, neg_source_boost=dict(EXTRAS_HALF, extra_sfx2=0.5), extra_negatives=2, seed=1),
    # cry13 with stochastic weight averaging (5 more epochs at lr 1e-3, averaged); two seeds
    "cry15_cv": dict(CRY13, swa_epochs=5),
    "cry15_seed1_cv": dict(CRY13, swa_epochs=5, seed=1),
    # cry13 again with another seed
    "cry13_seed1_cv": dict(CRY13, seed=1),
    "cry5_cv": dict(steps_per_epoch=24, neg_source_boost={"esc50": 2.5},
                    arch=dict(conv_channels=(32, 64, 128), lstm_hidden=128, dense=(64,), dropout=0.3, pooling="mean")),
}
# seed replicates: they measure seed noise and are not candidates for shipping
CRY_REPLICATES = {"cry2_seed1_cv", "cry9_seed1_cv", "cry13_seed1_cv", "cry14_seed1_cv", "cry15_seed1_cv"}
# recipes whose model trained on all folds failed a shipping check: not candidates, with the reason
CRY_EXCLUDED = {
    "cry9_cv": "its final model (cry 1.2.0) fires on continuous adult speech: 6-10 episodes in 2 min of the bundled "
               "LibriSpeech sample looped (a clip of its own training data), none with cry2's; "
               "Tests/GateTests/ShippedGateTests `talkingIsNotACry` fails with it",
}
# versions written into the exported model files (bump when a shipped model changes)
MODEL_VERSIONS = {"reason": "1.0.0", "cry": "1.3.0"}  # cry 1.2.0 (cry9) was withdrawn
SHIPPED_CRY = "cry_cv"  # replaced by shipped_cry(): lowest OOF false-positive rate at the recall-0.975 threshold


# ----------------------------------------------------------------------------------------------- data
class Data:
    def __init__(self, data_dir: Path, copies: int = 4):
        self.clean, self.aug, self.rows = fx.build_cache(data_dir, copies=copies)
        self.data_dir = data_dir
        rng = np.random.default_rng(99)
        # generated negatives for the cry detector: silence, pink noise, hum, white noise at random levels
        n = 5 * fx.SR
        self.synth = []
        for i in range(24):
            kind = i % 4
            if kind == 0:
                y = np.zeros(n, np.float32) + rng.uniform(0, 1e-4) * rng.standard_normal(n).astype(np.float32)
            elif kind == 1:
                y = fx.pink_noise(n, rng) * 10 ** rng.uniform(-3, -0.5)
            elif kind == 2:
                y = fx.hum(n, rng) * 10 ** rng.uniform(-3, -0.5)
            else:
                y = rng.standard_normal(n).astype(np.float32) * 10 ** rng.uniform(-3.5, -1)
            self.synth.append(fx.logmel(y.astype(np.float32)))

    def speech_streams(self, folds, n: int, seconds: float = 6.0) -> list:
        """`n` stretches of continuous speech (log-mel) built from the speech clips of `folds` only: random clips
        of one speaker back to back without gaps, as a person talking. FSDD's digits last half a second, so
        without these the detector never sees the long speech a nursery hears."""
        rng = np.random.default_rng(1000 + sum(folds))
        by_group = {}
        for r in self.rows:
            if r["fold"] in folds and r["is_cry"] == 0 and r["label"] == "speech":
                by_group.setdefault(r["group"], []).append(r["path"])
        groups = sorted(by_group)
        cache, out, need = {}, [], int(seconds * fx.SR)
        for _ in range(n):
            clips = by_group[groups[rng.integers(len(groups))]]
            parts, total = [], 0
            while total < need:
                path = clips[rng.integers(len(clips))]
                if path not in cache:
                    cache[path] = fx.load_audio(self.data_dir, path)
                parts.append(cache[path])
                total += len(cache[path])
            y = np.concatenate(parts)
            start = int(rng.integers(0, len(y) - need + 1))
            out.append(fx.logmel(y[start:start + need].astype(np.float32)))
        return out

    def items(self, task: str, folds, aug: bool, neg_aug: bool = False, neg_aug_noise: bool = True):
        """[(variants, label, sample_key)] for the rows of `folds`. `neg_aug`: non-cry clips get their
        augmented copies too (cry task); `neg_aug_noise`: those copies have noise mixed in like the cries'."""
        neg_copies = {}
        if neg_aug:
            if not hasattr(self, "neg_copies"):
                self.neg_copies = {}
            if neg_aug_noise not in self.neg_copies:
                self.neg_copies[neg_aug_noise] = fx.build_negative_cache(self.data_dir, noise=neg_aug_noise)
            neg_copies = self.neg_copies[neg_aug_noise]
        out = []
        for r in self.rows:
            if r["fold"] not in folds:
                continue
            if task == "reason":
                if r["source"] != "donateacry":
                    continue
                y = REASONS.index(r["label"])
                key = y
            else:
                y = r["is_cry"]
                key = "cry" if y else r["source"]
            v = [self.clean[r["path"]]]
            if aug and r["path"] in self.aug:
                v += self.aug[r["path"]]
            if aug and task == "cry" and r["path"] in neg_copies:
                v += neg_copies[r["path"]]
            out.append((v, y, key, r))
        if task == "cry":
            out += [([s], 0, "synthetic", None) for s in self.synth]
        return out

    def cry_training_items(self, folds, cfg: dict):
        """The cry detector's training items for `cfg` (its options), from `folds` only."""
        items = self.items("cry", folds, cfg["aug"], cfg.get("neg_aug", False), cfg.get("neg_aug_noise", True))
        if cfg.get("speech_streams"):
            items += [([s], 0, "speech_stream", None) for s in self.speech_streams(folds, cfg["speech_streams"])]
        if cfg.get("extra_negatives"):
            # not-cry audio from other sources than ../shared/data (training only; see extra_negatives.py)
            import extra_negatives
            for kind, clips in extra_negatives.load(int(cfg["extra_negatives"])).items():
                items += [([x], 0, f"extra_{kind}", None) for x in clips]
        return items


def norm_stats(items):
    x = np.concatenate([v[0] for v, *_ in items if v[0].shape[0] > 0])
    return float(x.mean()), float(x.std())


class Sampler:
    """Balanced (class_power=0) or tempered (weight ~ n_c ** class_power) sampling of random 94-frame crops."""

    def __init__(self, items, task, class_power, gain_db, rng, neg_source_boost=None, feat_aug=False, neg_mix=0.0):
        self.items, self.rng, self.gain_db = items, rng, gain_db
        self.feat_aug, self.neg_mix = feat_aug, neg_mix
        self.neg_idx = np.array([i for i, it in enumerate(items) if it[1] == 0 and task == "cry"])
        keys = [k for _, _, k, _ in items]
        labels = np.array([y for _, y, _, _ in items])
        w = np.zeros(len(items))
        if task == "reason":
            for c in set(labels.tolist()):
                idx = labels == c
                w[idx] = (idx.sum() ** class_power) / idx.sum()
        else:
            # cry vs not-cry balanced; inside not-cry, sources weighted by sqrt(count)
            cry = labels == 1
            w[cry] = 0.5 / cry.sum()
            srcs = {k for k, y in zip(keys, labels) if y == 0}
            boost = neg_source_boost or {}
            share = {s: math.sqrt(sum(1 for k in keys if k == s)) * boost.get(s, 1.0) for s in srcs}
            tot = sum(share.values())
            for s in srcs:
                idx = np.array([k == s for k in keys])
                w[idx] = 0.5 * share[s] / tot / idx.sum()
        self.p = w / w.sum()

    def crop(self, x):
        t = x.shape[0]
        if t >= WIN:
            s = self.rng.integers(0, t - WIN + 1)
            return x[s:s + WIN]
        if self.rng.random() < 0.5 and t > 0:
            return np.tile(x, (int(math.ceil(WIN / t)), 1))[:WIN]
        out = np.full((WIN, x.shape[1]), fx.SILENCE_DB, np.float32)
        s = self.rng.integers(0, WIN - t + 1)
        out[s:s + t] = x
        return out

    def warp(self, x):
        """Feature-domain augmentation applied to any clip (the cached audio-domain copies exist for cries only):
        time stretch by frame interpolation U(0.85, 1.15), a shift of the mel axis by -2..2 bins (a pitch shift
        of roughly +-1.5 semitones in the linear part of the mel scale), each with p = 0.5."""
        rng = self.rng
        if rng.random() < 0.5 and x.shape[0] > 1:
            r = rng.uniform(0.85, 1.15)
            t = x.shape[0]
            pos = np.arange(0, t - 1, r)
            i0 = pos.astype(int)
            f = (pos - i0)[:, None].astype(np.float32)
            x = x[i0] * (1 - f) + x[np.minimum(i0 + 1, t - 1)] * f
        if rng.random() < 0.5:
            k = int(rng.integers(-2, 3))
            if k > 0:
                x = np.concatenate([np.repeat(x[:, :1], k, 1), x[:, :-k]], 1)
            elif k < 0:
                x = np.concatenate([x[:, -k:], np.repeat(x[:, -1:], -k, 1)], 1)
        return x

    def batch(self, n):
        idx = self.rng.choice(len(self.items), size=n, p=self.p)
        xs, ys = [], []
        for i in idx:
            v, y, _, _ = self.items[i]
            src = v[self.rng.integers(len(v))]
            if self.feat_aug:
                src = self.warp(src)
            c = self.crop(src).copy()
            if y == 0 and self.neg_mix and len(self.neg_idx) and self.rng.random() < self.neg_mix:
                # two non-cry sounds at once (e.g. a dog over a TV) are still not a cry: mix in power
                w = self.items[self.neg_idx[self.rng.integers(len(self.neg_idx))]][0]
                o = self.crop(w[self.rng.integers(len(w))])
                c = np.logaddexp(c * (np.log(10) / 10), (o + self.rng.uniform(-10, 10)) * (np.log(10) / 10)) * (10 / np.log(10))
                c = c.astype(np.float32)
            if self.gain_db:
                live = c > fx.SILENCE_DB + 1e-3
                c[live] += self.rng.uniform(-self.gain_db, self.gain_db)
            xs.append(c)
            ys.append(y)
        return np.stack(xs), np.array(ys)


def to_input(x, mean, std):
    """[B, frames, n_mels] dB -> [B, 1, n_mels, frames] normalised."""
    return torch.from_numpy((np.asarray(x, np.float32) - mean) / std).permute(0, 2, 1).unsqueeze(1).contiguous()


# ----------------------------------------------------------------------------------------------- model
def make_model(n_classes, arch=None):
    return CRNN(64, n_classes, **(arch or ARCH))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def train_model(items, cfg, init_state=None, log=None):
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    n_classes = len(REASONS) if cfg["task"] == "reason" else 2
    model = make_model(n_classes, cfg.get("arch"))
    if init_state is not None:
        own = model.state_dict()
        take = {k: v for k, v in init_state.items() if k.startswith("blocks.") and k in own and own[k].shape == v.shape}
        own.update(take)
        model.load_state_dict(own)
    mean, std = norm_stats(items)
    sampler = Sampler(items, cfg["task"], cfg["class_power"], cfg["gain_db"], rng, cfg.get("neg_source_boost"),
                      cfg.get("feat_aug", False), cfg.get("neg_mix", 0.0))
    steps = cfg["epochs"] * cfg["steps_per_epoch"]
    frozen = bool(cfg.get("freeze_trunk"))
    params = [p for n, p in model.named_parameters() if not (frozen and n.startswith("blocks."))]
    opt = torch.optim.Adam(params, lr=cfg["max_lr"] / cfg["div_factor"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["max_lr"], total_steps=steps,
                                                div_factor=cfg["div_factor"])
    t0 = time.time()
    model.train()
    run_loss = 0.0
    if frozen:
        for b in model.blocks:
            b.eval()  # keep the pre-trained BN statistics; no dropout in the frozen trunk
            for p in b.parameters():
                p.requires_grad_(False)
    base_p = sampler.p.copy()
    for step in range(steps):
        if cfg.get("hard_negatives") and step >= steps // 4 and step % 50 == 0:
            # hard-negative mining: each non-cry clip's sampling weight is scaled by 0.25 + its current p(cry) on
            # a random crop (renormalised within the non-cry half), so confusable sounds come back more often
            model.eval()
            neg = sampler.neg_idx
            with torch.no_grad():
                crops = np.stack([sampler.crop(items[i][0][0]) for i in neg])
                pc = torch.softmax(model(to_input(crops, mean, std)), -1)[:, 1].numpy()
            model.train()
            w = base_p.copy()
            w[neg] = base_p[neg] * (0.25 + pc)
            w[neg] *= base_p[neg].sum() / w[neg].sum()
            sampler.p = w / w.sum()
        run_loss += train_step(model, opt, sampler, cfg, mean, std)
        sched.step()
        if (step + 1) % cfg["steps_per_epoch"] == 0 and log:
            log(f"  epoch {(step + 1) // cfg['steps_per_epoch']:2d} loss {run_loss / cfg['steps_per_epoch']:.4f} "
                f"({time.time() - t0:.0f}s)")
            run_loss = 0.0
    if cfg.get("swa_epochs"):
        model = weight_average(model, sampler, opt, cfg, mean, std, log)
    model.eval()
    return model, mean, std, time.time() - t0


def train_step(model, opt, sampler, cfg, mean, std) -> float:
    """One optimiser step on a fresh batch; returns the loss."""
    xb, yb = sampler.batch(cfg["batch"])
    loss = F.cross_entropy(model(to_input(xb, mean, std)), torch.from_numpy(yb), label_smoothing=cfg["label_smoothing"])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return loss.item()


def weight_average(model, sampler, opt, cfg, mean, std, log=None):
    """Stochastic weight averaging after the one-cycle schedule: `swa_epochs` more epochs at a constant
    `swa_lr`, the weights averaged over the end of each epoch, then batch-norm statistics recomputed on 32
    training batches. An average of nearby solutions is flatter than any one of them, which is meant to
    shrink the seed-to-seed spread of the false-positive rate."""
    from torch.optim.swa_utils import AveragedModel, update_bn
    swa = AveragedModel(model)
    for g in opt.param_groups:
        g["lr"] = cfg.get("swa_lr", cfg["max_lr"] / 10)
    for epoch in range(cfg["swa_epochs"]):
        model.train()
        for _ in range(cfg["steps_per_epoch"]):
            train_step(model, opt, sampler, cfg, mean, std)
        swa.update_parameters(model)
        if log:
            log(f"  swa epoch {epoch + 1}: averaged {epoch + 1} snapshots")
    update_bn([to_input(sampler.batch(cfg["batch"])[0], mean, std) for _ in range(32)], swa)
    return swa.module


def windows(x):
    t = x.shape[0]
    if t < MIN_FRAMES:
        pad = np.full((MIN_FRAMES - t, x.shape[1]), fx.SILENCE_DB, np.float32)
        return [np.concatenate([x, pad])]
    if t <= WIN:
        return [x]
    return [x[s:s + WIN] for s in range(0, t - WIN + 1, HOP)]


@torch.no_grad()
def window_logits(model, feats, mean, std):
    """Per clip: [n_windows, n_classes] logits (the windows the Swift engine analyses)."""
    model.eval()
    out = []
    full, fidx, short = [], [], []
    for i, x in enumerate(feats):
        ws = windows(x)
        if ws[0].shape[0] == WIN:
            full.extend(ws)
            fidx.extend([i] * len(ws))
        else:
            short.append(i)
        out.append(None)
    res = {i: [] for i in range(len(feats))}
    for s in range(0, len(full), 256):
        lg = model(to_input(np.stack(full[s:s + 256]), mean, std)).numpy()
        for j, l in zip(fidx[s:s + 256], lg):
            res[j].append(l)
    for i in short:
        res[i].append(model(to_input(windows(feats[i])[0][None], mean, std)).numpy()[0])
    return [np.array(res[i], np.float64) for i in range(len(feats))]


def clip_probs(wlogits, temperature=1.0):
    """softmax(mean over windows of log_softmax(logits / T))"""
    out = []
    for w in wlogits:
        z = w / temperature
        lp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        m = lp.mean(axis=0)
        out.append(np.exp(m - np.logaddexp.reduce(m)))
    return np.array(out)


def cry_max_prob(wlogits, temperature=1.0):
    out = []
    for w in wlogits:
        z = w / temperature
        p = np.exp(z - np.logaddexp.reduce(z, axis=1, keepdims=True))[:, 1]
        out.append(p.max())
    return np.array(out)


def fit_temperature(wlogits, labels):
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 161))
    nll = [-np.mean(np.log(clip_probs(wlogits, t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


# ----------------------------------------------------------------------------------------------- stages
def save(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def logger(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        fh.write(line + "\n")
        fh.flush()
    return log


def run_cv(D: Data, name: str, cfg: dict, force=False):
    out_dir = RUNS / name
    res_p = out_dir / "result.json"
    if res_p.exists() and not force:
        return json.loads(res_p.read_text())
    log = logger(out_dir / "train.log")
    log(f"CV {name}: {json.dumps(cfg)} arch {cfg.get('arch') or ARCH}")
    t_all = time.time()
    oof = []
    fold_times = {}
    for k in FOLDS:
        tr = (D.cry_training_items([f for f in FOLDS if f != k], cfg) if cfg["task"] == "cry"
              else D.items(cfg["task"], [f for f in FOLDS if f != k], cfg["aug"]))
        te = D.items(cfg["task"], [k], False)
        te = [it for it in te if it[3] is not None]
        init = None
        if cfg.get("init") == "cry_trunk":
            init = torch.load(RUNS / "cry_cv" / f"fold{k}.pt", weights_only=True)
        log(f"fold {k}: train {len(tr)} clips, test {len(te)} clips")
        model, mean, std, secs = train_model(tr, cfg, init, log)
        fold_times[k] = secs
        torch.save(model.state_dict(), out_dir / f"fold{k}.pt")
        wl = window_logits(model, [it[0][0] for it in te], mean, std)
        for it, w in zip(te, wl):
            r = it[3]
            oof.append(dict(path=r["path"], fold=k, source=r["source"], label=r["label"], y=int(it[1]),
                            group=r["group"], wlogits=w.tolist()))
        p = clip_probs(wl)
        yt = np.array([it[1] for it in te])
        log(f"fold {k}: acc {np.mean(p.argmax(1) == yt):.3f}, {secs:.0f}s; pred counts {np.bincount(p.argmax(1), minlength=p.shape[1]).tolist()}")
        save(out_dir / "oof_partial.json", dict(oof=oof))
    res = dict(name=name, cfg=cfg, arch=cfg.get("arch") or ARCH,
               params=n_params(make_model(5 if cfg["task"] == "reason" else 2, cfg.get("arch"))),
               oof=oof, fold_train_seconds=fold_times, wall_seconds=time.time() - t_all)
    save(res_p, res)
    log(f"CV {name} done in {time.time() - t_all:.0f}s")
    return res


def run_baselines(D: Data, force=False):
    res_p = RUNS / "baselines" / "result.json"
    if res_p.exists() and not force:
        return json.loads(res_p.read_text())
    import librosa
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    t0 = time.time()
    rows = [r for r in D.rows if r["source"] == "donateacry"]

    def stats(x):
        mf = librosa.feature.mfcc(S=x.T, n_mfcc=20)
        return np.concatenate([x.mean(0), x.std(0), mf.mean(1), mf.std(1)])
    X = np.array([stats(D.clean[r["path"]]) for r in rows])
    y = np.array([REASONS.index(r["label"]) for r in rows])
    folds = np.array([r["fold"] for r in rows])
    maj, lr = [], []
    for k in FOLDS:
        tr, te = folds != k, folds == k
        prior = np.bincount(y[tr], minlength=5) / tr.sum()
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000))
        clf.fit(X[tr], y[tr])
        pr = clf.predict_proba(X[te])
        for i, j in enumerate(np.where(te)[0]):
            base = dict(path=rows[j]["path"], fold=k, label=rows[j]["label"], y=int(y[j]))
            maj.append(dict(base, probs=prior.tolist()))
            lr.append(dict(base, probs=pr[i].tolist()))
    res = dict(majority=maj, logreg=lr, logreg_desc="64 log-mel means + 64 stds + 20 MFCC means + 20 stds "
               "(over the whole clip), standardised; LogisticRegression(C=0.1, class_weight='balanced')",
               wall_seconds=time.time() - t0)
    save(res_p, res)
    return res


def run_final(D: Data, task: str, cfg: dict, cv_res: dict, force=False, data_desc="", name=None, export=True):
    import metrics as M
    out_dir = RUNS / (name or f"final_{task}")
    res_p = out_dir / "result.json"
    if res_p.exists() and not force:
        return json.loads(res_p.read_text())
    log = logger(out_dir / "train.log")
    items = D.cry_training_items(FOLDS, cfg) if task == "cry" else D.items(task, FOLDS, cfg["aug"])
    init = None
    if cfg.get("init") == "cry_trunk":
        init = torch.load(RUNS / "final_cry" / "model.pt", weights_only=True)
    log(f"final {task}: {len(items)} clips, {json.dumps(cfg)}")
    model, mean, std, secs = train_model(items, cfg, init, log)
    torch.save(model.state_dict(), out_dir / "model.pt")
    oof = cv_res["oof"]
    wl = [np.array(o["wlogits"]) for o in oof]
    yt = np.array([o["y"] for o in oof])
    T = fit_temperature(wl, yt)
    summary = M.summarise_cv(cv_res, task)
    adjust = None
    if task == "reason":
        # post-hoc logit adjustment chosen on the OOF predictions (see metrics.select_tau), folded into out.bias
        sh = summary["shipped"]
        T = sh["temperature"]
        adjust = dict(tau=sh["tau"], bias_added=sh["bias_added"], log_prior=sh["log_prior"],
                      note="out.bias += tau * log(class prior of the training data); the model was trained on "
                           "batches with class frequencies ~ n_c ** class_power (0: balanced), i.e. for a flattened "
                           "prior; tau chosen on OOF predictions to maximise macro-F1 at accuracy >= 0.75")
        with torch.no_grad():
            model.out.bias += torch.tensor(sh["bias_added"], dtype=torch.float32)
    res = dict(task=task, cfg=cfg, arch=cfg.get("arch") or ARCH, params=n_params(model), norm_mean=mean, norm_std=std,
               temperature=T, train_seconds=secs)
    if task == "cry":
        res["threshold"] = summary["threshold"]
    else:
        res["logit_adjustment"] = adjust
    log(f"final {task}: T={T:.3f}, {secs:.0f}s, params {n_params(model)}")
    # export
    labels = REASONS if task == "reason" else CRY_LABELS
    feats = {k: v for k, v in fx.FEATURES.items()}
    feats.update(norm_mean=mean, norm_std=std)
    # self-test input: the first window of a training clip of the last class (deterministic)
    st_row = next(r for r in D.rows if (r["source"] == "donateacry" and r["label"] == "hungry"))
    st = D.clean[st_row["path"]][:WIN]
    training = dict(
        data=data_desc, date=date.today().isoformat(), folds=FOLDS,
        recipe=dict(cfg, arch=cfg.get("arch") or ARCH, optimiser="Adam + OneCycleLR", crop_frames=WIN,
                    augmentation=("4 precomputed copies per cry clip: pitch +-2 st, stretch +-10%, noise (same-fold "
                                  "non-cry clips, pink, hum) at SNR 0-20 dB; random gain"
                                  + ("; 4 copies of every non-cry clip except FSDD's: pitch, stretch"
                                     + (", noise" if cfg.get("neg_aug_noise", True) else "")
                                     if cfg.get("neg_aug") else "")) if cfg["aug"] else "gain only",
                    pretrained_trunk="conv blocks of the cry detector" if cfg.get("init") else None),
        train_seconds=round(secs, 1), selftest_source=st_row["path"], logit_adjustment=adjust,
        parameters=n_params(model),
        metrics=M.compact(summary, task),
    )
    cal = dict(method="temperature", temperature=T, fit_on="out-of-fold clip predictions (4-fold grouped CV)")
    if task == "cry":
        cal = None  # the gate threshold is chosen on uncalibrated window probabilities
    if not export:  # e.g. the trunk-only cry model when another cry recipe is shipped
        save(res_p, res)
        return res
    from export_model import export_model
    path = EXPORT_DIR / ("deepinfant-reason.safetensors" if task == "reason" else "deepinfant-cry.safetensors")
    kw = dict(name=f"deepinfant-crnn-{task}", version=MODEL_VERSIONS[task], task=task, labels=labels, features=feats,
              window=dict(seconds=3.0, hop_seconds=1.0, frames=WIN, hop_frames=HOP), training=training,
              calibration=cal, selftest_input=st)
    meta = export_model(model, path, **kw)
    if task == "cry":
        # export_model has no "gate" argument: add it to the metadata JSON after writing
        add_metadata(path, dict(gate=dict(threshold=summary["threshold"], decision="max over windows of p(cry) >= threshold",
                                          chosen_on="highest threshold keeping out-of-fold clip recall >= 0.975 (target 0.97), 4-fold grouped CV")))
    res["export"] = str(path)
    res["selftest_expected"] = meta["selftest"]["expected"]
    res["verify"] = verify_export(path, task)
    log(f"exported {path}: {res['verify']}")
    save(res_p, res)
    return res


def verify_export(path: Path, task: str) -> dict:
    """Reload the written file with the safetensors library, rebuild the CRNN from its tensors and metadata, and
    check the self-test (and the gate threshold for the cry model)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        meta = json.loads(f.metadata()["deepinfant"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    a = meta["architecture"]
    m = CRNN(a["n_mels"], a["n_classes"], conv_channels=tuple(a["conv_channels"]), lstm_hidden=a["lstm_hidden"],
             dense=tuple(a["dense"]), pooling=a["pooling"])
    sd = {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if k != "selftest.input"}
    missing = m.load_state_dict(sd, strict=False)
    assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys), missing
    m.eval()
    ft = meta["features"]
    with torch.no_grad():
        p = torch.softmax(m(to_input(tensors["selftest.input"][None], ft["norm_mean"], ft["norm_std"])).double(), -1)[0]
    err = float(np.max(np.abs(p.numpy() - np.array(meta["selftest"]["expected"]))))
    assert err <= meta["selftest"]["tolerance"], err
    assert meta["task"] == task and meta["features"]["fmax"] == 4000.0
    if task == "cry":
        assert 0 < meta["gate"]["threshold"] < 1
    return dict(selftest_max_abs_err=err, n_tensors=len(tensors), bytes=path.stat().st_size,
                labels=meta["labels"], calibration=meta["calibration"], gate=meta.get("gate"))


def add_metadata(path: Path, extra: dict):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["deepinfant"])
    meta.update(extra)
    header["__metadata__"]["deepinfant"] = json.dumps(meta, separators=(",", ":"))
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(len(h).to_bytes(8, "little") + h + raw[8 + n:])
    tmp.replace(path)


def speech_alarm_rate(gate: dict) -> float:
    """False alarms per hour of continuous speech through the gate: the folds' own speech clips back to back and,
    where measured, the held-out Asterisk voices (eval_gate_cv.py), pooled; rounded so that one alarm's
    difference on minutes of speech is not mistaken for a measured gap."""
    parts = [p for p in (gate.get("speech"), gate.get("held_out_speech")) if p]
    if not parts:
        return math.inf
    alarms = sum(p["false_alarms"] for p in parts)
    hours = sum(p["hours"] for p in parts)
    return round(alarms / hours)


def recall_seed_noise(results: dict) -> float:
    """The largest gate-recall difference between a recipe and its seed replicate (`CRY_REPLICATES`, named
    <recipe>_seed1_cv) among those with gate results; 0 when there are none."""
    gaps = []
    for rep in CRY_REPLICATES:
        base = rep.replace("_seed1_cv", "_cv")
        pair = [results.get(k) or (json.loads((RUNS / k / "gate_cv.json").read_text())
                                   if (RUNS / k / "gate_cv.json").exists() else None) for k in (base, rep)]
        if all(pair):
            gaps.append(abs(pair[0]["min_cry_windows"]["2"]["recall"] - pair[1]["min_cry_windows"]["2"]["recall"]))
    return max(gaps, default=0.0)


def shipped_cry() -> str:
    """The cry recipe with the fewest false alarms per hour of continuous speech (`speech_alarm_rate`), then the lowest gate-level
    false-positive rate (training/eval_gate_cv.py: the real gate with min_cry_windows 2, grouped CV), among
    those whose gate-level recall reaches the 0.97 target less the seed noise (`recall_seed_noise`; if none
    does: the highest recall), when every
    candidate has that evaluation; otherwise the lowest window-level out-of-fold FPR at the recall-0.975
    threshold. The gate-level figure is the one that matters: the window-level FPR is dominated by FSDD's 500
    spoken digits, which are too short to open an episode."""
    import metrics as M
    done = {k: json.loads((RUNS / k / "result.json").read_text()) for k in ["cry_cv", *CRY_VARIANTS]
            if (RUNS / k / "result.json").exists() and k not in CRY_REPLICATES and k not in CRY_EXCLUDED}
    if not done:
        return SHIPPED_CRY
    results = {k: json.loads((RUNS / k / "gate_cv.json").read_text()) for k in done if (RUNS / k / "gate_cv.json").exists()}
    gate = {k: r["min_cry_windows"].get("2") for k, r in results.items()}
    if len(gate) == len(done) and all(gate.values()):
        # a recall short of the target by less than the seed noise measured on the replicates is not a measured
        # shortfall (at 398 cries, 0.003 is one clip)
        tol = recall_seed_noise(results)
        meet = [k for k in done if gate[k]["recall"] >= M.CRY_RECALL_TARGET - tol]
        if meet:
            # Fewest false alarms on continuous speech first (people talking is the commonest sound in a home,
            # and a recipe that passed everything else once fired on it), then the lowest FPR.
            speech = {k: speech_alarm_rate(results[k]) for k in meet}
            return min(meet, key=lambda k: (speech[k], round(gate[k]["fpr"], 3), -gate[k]["recall"]))
        # none reaches the recall target: the closest to it ("never miss a cry" comes first), then the lower FPR
        return max(done, key=lambda k: (round(gate[k]["recall"], 3), -gate[k]["fpr"]))
    def key(name):
        s = M.summarise_cry(done[name])
        return (-round(s["pooled"]["fpr"], 3), round(s["auc_max"], 4))
    return max(done, key=key)


def shipped_reason() -> str:
    done = {k: json.loads((RUNS / k / "result.json").read_text()) for k in REASON_VARIANTS
            if (RUNS / k / "result.json").exists()}
    return choose_reason(done) if done else SHIPPED_REASON


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(fx.DEFAULT_DATA), help="data dir (default ../shared/data from the repo root)")
    ap.add_argument("--all", action="store_true", help="run every stage and write the report")
    ap.add_argument("--stages", default="", help="comma list of stages (see above)")
    ap.add_argument("--force", action="store_true", help="recompute stages whose results exist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny run into runs/smoke (code check only)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    global RUNS, EXPORT_DIR
    if a.smoke:
        RUNS = HERE / "runs" / "smoke"
        EXPORT_DIR = RUNS / "models"
        for c in (REASON_CFG, CRY_CFG):
            c.update(epochs=2, steps_per_epoch=2)
    stages = ["cry_cv", *REASON_VARIANTS, "gate_cv", "final_cry", "final_reason", "baselines", "reason_noaug_cv",
              "report"] if a.all else [s for s in a.stages.split(",") if s]
    data_dir = Path(a.data).resolve()
    t0 = time.time()
    D = Data(data_dir)
    desc = (f"{os.path.relpath(data_dir, REPO)}/manifest.csv: Donate-a-Cry reasons (366 clips), cry/not-cry all sources (1,267 clips); "
            "4 grouped folds")
    cvs = {}
    global SHIPPED_REASON, SHIPPED_CRY
    for s in stages:
        ts = time.time()
        if s in ("final_cry", "report"):
            SHIPPED_CRY = shipped_cry()
            print(f"shipped cry recipe: {SHIPPED_CRY}", flush=True)
        if s in ("final_reason", "reason_noaug_cv", "report"):
            SHIPPED_REASON = shipped_reason()
            print(f"shipped reason recipe: {SHIPPED_REASON}", flush=True)
        if s == "cry_cv":
            cvs[s] = run_cv(D, "cry_cv", CRY_CFG, a.force)
        elif s in REASON_VARIANTS:
            cvs[s] = run_cv(D, s, dict(REASON_CFG, **REASON_VARIANTS[s]), a.force)
        elif s == "reason_noaug_cv":  # augmentation ablation of the shipped recipe
            run_cv(D, "reason_noaug_cv", dict(REASON_CFG, **REASON_VARIANTS[SHIPPED_REASON], aug=False), a.force)
        elif s == "baselines":
            run_baselines(D, a.force)
        elif s in CRY_VARIANTS:
            cvs[s] = run_cv(D, s, dict(CRY_CFG, **CRY_VARIANTS[s]), a.force)
        elif s == "gate_cv":  # the real gate (Swift release binary) over each cry recipe's CV fold models
            binary = REPO / ".build" / "release" / "deepinfant-edge"
            if not binary.exists():
                sys.exit(f"gate_cv needs the release binary {binary}: run `swift build -c release` first")
            import subprocess
            for k in ["cry_cv", *CRY_VARIANTS]:
                if (RUNS / k / "gate_cv.json").exists() and not a.force:
                    continue
                cvs[k] = cvs.get(k) or run_cv(D, k, CRY_CFG if k == "cry_cv" else dict(CRY_CFG, **CRY_VARIANTS[k]))
                subprocess.run([sys.executable, str(HERE / "eval_gate_cv.py"), k, "--data", str(data_dir),
                                "--binary", str(binary), "--min-cry-windows", "1,2,3"], check=True)
        elif s == "final_cry":  # CRY_CFG on all folds: reason-model trunk, and the shipped gate if SHIPPED_CRY == cry_cv
            run_final(D, "cry", CRY_CFG, cvs.get("cry_cv") or run_cv(D, "cry_cv", CRY_CFG), a.force, desc,
                      export=SHIPPED_CRY == "cry_cv")
            if SHIPPED_CRY != "cry_cv":
                cfg = dict(CRY_CFG, **CRY_VARIANTS[SHIPPED_CRY])
                run_final(D, "cry", cfg, cvs.get(SHIPPED_CRY) or run_cv(D, SHIPPED_CRY, cfg), a.force, desc,
                          name="final_" + SHIPPED_CRY.replace("_cv", ""))
        elif s == "final_reason":
            cfg = dict(REASON_CFG, **REASON_VARIANTS[SHIPPED_REASON])
            run_final(D, "reason", cfg, cvs.get(SHIPPED_REASON) or run_cv(D, SHIPPED_REASON, cfg), a.force, desc)
        elif s == "report":
            import report
            report.main([])
        print(f"stage {s}: {time.time() - ts:.0f}s", flush=True)
    print(f"total wall time {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
