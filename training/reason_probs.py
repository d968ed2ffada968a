#!/usr/bin/env python3
"""The shipped reason CRNN's clip probabilities for every Donate-a-Cry clip (cleaned set and raw uploads), cached in
training/cache/reason_probs.pkl: what the node reports as the global reason model for an episode (feedback_sim.py).

The clip's probabilities are train.py's `clip_probs` of the shipped model (softmax of the mean over its 3 s windows,
hop 1 s, of the log-softmax; temperature and logit adjustment are folded into `out` in the shipped file), i.e. the
Swift engine's `mean_log_prob` aggregation over the whole clip (the node aggregates over the episode's windows).
The shipped model was trained on folds 1-4 of the *cleaned* donateacry set: its probabilities for those clips are
in-fold (optimistic); the raw uploads were never trained on (out-of-sample, though some devices are shared).
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import features as fx  # noqa: E402
import train  # noqa: E402

MODEL = HERE.parent / "Sources" / "Inference" / "Resources" / "deepinfant-reason.safetensors"
OUT = fx.CACHE / "reason_probs.pkl"


def load_model():
    with safe_open(str(MODEL), "np") as f:
        md = json.loads(f.metadata()["deepinfant"])
    a = md["architecture"]
    model = train.make_model(a["n_classes"], dict(conv_channels=tuple(a["conv_channels"]), lstm_hidden=a["lstm_hidden"],
                                                  dense=tuple(a["dense"]), dropout=0.0, pooling=a["pooling"]))
    sd = {k: v for k, v in load_file(str(MODEL)).items() if not k.startswith("selftest")}
    model.load_state_dict(sd, strict=False)
    model.eval()
    return model, md


def main():
    torch.set_num_threads(1)
    data = fx.DEFAULT_DATA.resolve()
    rows = [r for r in fx.read_manifest(data) if r["source"] in ("donateacry", "donateacry_raw")]
    model, md = load_model()
    mean, std = md["features"]["norm_mean"], md["features"]["norm_std"]
    out = pickle.load(open(OUT, "rb")) if OUT.exists() else {}
    todo = [r for r in rows if r["path"] not in out]
    for i in range(0, len(todo), 64):
        chunk = todo[i:i + 64]
        feats = [fx.logmel(fx.load_audio(data, r["path"])) for r in chunk]
        P = train.clip_probs(train.window_logits(model, feats, mean, std))
        for r, p in zip(chunk, P):
            out[r["path"]] = dict(zip(md["labels"], map(float, p)))
        print(f"{min(i + 64, len(todo))}/{len(todo)}", flush=True)
    out["__labels__"] = md["labels"]
    pickle.dump(out, open(OUT, "wb"))
    hit = [max(out[r["path"]], key=out[r["path"]].get) == r["label"] for r in rows if r["source"] == "donateacry"]
    print(f"wrote {OUT}: {len(out) - 1} clips; in-fold accuracy on the cleaned set {np.mean(hit):.3f}")


if __name__ == "__main__":
    main()
