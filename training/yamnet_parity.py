#!/usr/bin/env python3
"""YAMNet parity on real recordings: the float ports against Google's int8 TFLite file.

Ports compared with the TFLite interpreter (`yamnet.tflite`, int8, `experimental_preserve_all_tensors`, the builtin
kernels without delegates; embedding = the internal tensor `tower0/network/layer28/reduce_mean`, dequantised):
(a) `yamnet_reference.py` (NumPy, float64) on the converted body file, and (b) with `--swift BINARY` the Swift port,
run as `BINARY tag --json --top 521 --embeddings DIR [--model FILE] FILE...` (one JSON line per file
`{"file": ..., "patches": [{"start", "end", "top": [[label, score], ...]}]}` and `DIR/<stem>.npy` float32
[P, 1024]); a binary without that command is reported and skipped.

Every clip is cut on the offline patch grid (patches start every 7,680 samples; the last one zero-padded; see
docs/model-format-yamnet.md). Per port: per-patch embedding cosine (median, p1, min), Pearson correlation and
|delta| of the "Baby cry, infant cry" score (class 20), top-1 agreement (a port's top class agrees when TFLite's
score for it equals TFLite's maximum: int8 scores are multiples of 1/256 and often tie), number of patches.
Targets: cosine >= 0.99 for every patch, median >= 0.999, Baby cry max |delta| <= 0.1, top-1 >= 95 %.

Clips: a deterministic sample of ~150 spread over every source of the manifest (`--n`), or `--all`.
Writes training/report/YAMNET_PARITY.md and training/report/yamnet_parity.json.

    python3 training/yamnet_parity.py [--all] [--swift .build/release/deepinfant-edge [--swift-model FILE]]
"""
from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import yamnet_reference as ref  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_TFLITE = ROOT.parent / "shared" / "models" / "yamnet" / "yamnet.tflite"
REPORT_MD = HERE / "report" / "YAMNET_PARITY.md"
REPORT_JSON = HERE / "report" / "yamnet_parity.json"
EMBEDDING_TENSOR = "tower0/network/layer28/reduce_mean"
BABY_CRY = 20
TARGETS = {"cos_min": 0.99, "cos_median": 0.999, "baby_cry_max_abs": 0.1, "top1": 0.95}


# ------------------------------------------------------------------------------------------ clips
def read_manifest(data: Path) -> list[dict]:
    with open(data / "manifest.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["path"])


def sample_clips(rows: list[dict], n: int) -> list[dict]:
    """~n clips spread over every source: an equal share per source (all of a small source), the rest shared
    round-robin; within a source evenly spaced over the clips sorted by path. Deterministic."""
    by = collections.defaultdict(list)
    for r in rows:
        by[r["source"]].append(r)
    sources = sorted(by)
    quota = {s: min(len(by[s]), n // len(sources)) for s in sources}
    left = n - sum(quota.values())
    while left > 0 and any(quota[s] < len(by[s]) for s in sources):
        for s in sources:
            if left > 0 and quota[s] < len(by[s]):
                quota[s] += 1
                left -= 1
    out = []
    for s in sources:
        idx = np.unique(np.round(np.linspace(0, len(by[s]) - 1, quota[s])).astype(int)) if quota[s] else []
        out += [by[s][i] for i in idx]
    return out


def load(path: Path) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != 16000:
        raise ValueError(f"{path}: {sr} Hz, expected 16000")
    return y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]


# ------------------------------------------------------------------------------------------ ports
class TFLite:
    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        self.it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]["index"]
        self.out = self.it.get_output_details()[0]["index"]
        t = {d["name"]: d for d in self.it.get_tensor_details()}[EMBEDDING_TENSOR]
        self.emb, (self.scale, self.zero) = t["index"], t["quantization"]

    def embed(self, z: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z: the zero-padded waveform; starts: patch starts."""
        E, S = np.zeros((len(starts), 1024)), np.zeros((len(starts), 521))
        for j, s in enumerate(starts):
            self.it.set_tensor(self.inp, np.ascontiguousarray(z[s:s + 15600], dtype=np.float32))
            self.it.invoke()
            E[j] = (self.it.get_tensor(self.emb).reshape(-1).astype(np.float64) - self.zero) * self.scale
            S[j] = self.it.get_tensor(self.out).reshape(-1)
        return E, S


def swift_supported(binary: str) -> str | None:
    """None when `binary tag` takes --json/--top/--embeddings, else why not."""
    try:
        p = subprocess.run([binary, "tag", "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {binary}: {e}"
    h = p.stdout + p.stderr
    missing = [o for o in ("--json", "--top", "--embeddings") if o not in h]
    if p.returncode != 0 or missing:
        return f"{binary} tag does not support {', '.join(missing) or 'the tag command'} (exit {p.returncode})"
    return None


def swift_run(binary: str, model: str | None, paths: list[Path], labels: list[str], batch: int = 64):
    """{index: (embeddings [P, 1024], scores [P, 521])}; files are linked as <index>.flac so stems are unique."""
    index = {l: i for i, l in enumerate(labels)}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        emb_dir = tmp / "emb"
        links = []
        for i, p in enumerate(paths):
            l = tmp / f"{i:05d}{p.suffix}"
            l.symlink_to(p.resolve())
            links.append(l)
        for b in range(0, len(links), batch):
            cmd = [binary, "tag", "--json", "--top", "521", "--embeddings", str(emb_dir)]
            if model:
                cmd += ["--model", model]
            p = subprocess.run(cmd + [str(l) for l in links[b:b + batch]], capture_output=True, text=True)
            for line in p.stdout.splitlines():
                if not line.startswith("{"):
                    continue
                o = json.loads(line)
                i = int(Path(o["file"]).stem)
                if "error" in o:
                    raise RuntimeError(f"swift port: {paths[i]}: {o['error']}")
                S = np.zeros((len(o["patches"]), 521))
                for j, patch in enumerate(o["patches"]):
                    for lab, sc in patch["top"]:
                        S[j, index[lab]] = sc
                E = np.load(emb_dir / f"{i:05d}.npy").astype(np.float64)
                out[i] = (E, S)
            if p.returncode != 0:
                raise RuntimeError(f"swift port exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return out


# ------------------------------------------------------------------------------------------ metrics
def compare(E, S, Et, St) -> dict:
    """Per-patch arrays: cosine, Baby cry (port, tflite), top-1 agreement with TFLite's ties."""
    n = np.linalg.norm(E, axis=1) * np.linalg.norm(Et, axis=1)
    cos = np.where(n > 0, (E * Et).sum(axis=1) / np.where(n > 0, n, 1), np.where(
        (np.linalg.norm(E, axis=1) == 0) & (np.linalg.norm(Et, axis=1) == 0), 1.0, 0.0))
    top = S.argmax(axis=1)
    agree = St[np.arange(len(St)), top] == St.max(axis=1)
    return {"cos": cos, "bc": S[:, BABY_CRY], "bc_t": St[:, BABY_CRY], "agree": agree,
            "score_max_abs": np.abs(S - St).max(axis=1)}


def summarise(parts: list[dict]) -> dict:
    cos = np.concatenate([p["cos"] for p in parts])
    bc = np.concatenate([p["bc"] for p in parts])
    bct = np.concatenate([p["bc_t"] for p in parts])
    agree = np.concatenate([p["agree"] for p in parts])
    smax = np.concatenate([p["score_max_abs"] for p in parts])
    d = np.abs(bc - bct)
    r = float(np.corrcoef(bc, bct)[0, 1]) if bc.std() > 0 and bct.std() > 0 else float("nan")
    s = {"patches": int(len(cos)), "cos_median": float(np.median(cos)), "cos_p1": float(np.percentile(cos, 1)),
         "cos_min": float(cos.min()), "baby_cry_pearson": r, "baby_cry_max_abs": float(d.max()),
         "baby_cry_median_abs": float(np.median(d)), "top1": float(agree.mean()),
         "score_max_abs": float(smax.max())}
    s["pass"] = {"cos_min": s["cos_min"] >= TARGETS["cos_min"], "cos_median": s["cos_median"] >= TARGETS["cos_median"],
                 "baby_cry_max_abs": s["baby_cry_max_abs"] <= TARGETS["baby_cry_max_abs"], "top1": s["top1"] >= TARGETS["top1"]}
    return s


def table(results: dict[str, dict]) -> str:
    rows = [("patches", "patches", "{:d}"), ("embedding cosine median", "cos_median", "{:.5f}"),
            ("embedding cosine p1", "cos_p1", "{:.5f}"), ("embedding cosine min", "cos_min", "{:.5f}"),
            ("Baby cry Pearson r", "baby_cry_pearson", "{:.5f}"), ("Baby cry max abs Δ", "baby_cry_max_abs", "{:.4f}"),
            ("Baby cry median abs Δ", "baby_cry_median_abs", "{:.4f}"), ("top-1 agreement (ties count)", "top1", "{:.2%}"),
            ("any class score max abs Δ", "score_max_abs", "{:.4f}")]
    target = {"cos_median": "≥ 0.999", "cos_min": "≥ 0.99", "baby_cry_max_abs": "≤ 0.1", "top1": "≥ 95 %"}
    names = list(results)
    out = ["| metric (vs int8 TFLite) | " + " | ".join(names) + " | target |",
           "|---|" + "---|" * len(names) + "---|"]
    for title, k, fmt in rows:
        cells = []
        for n in names:
            v = results[n][k]
            c = fmt.format(v)
            if k in results[n].get("pass", {}):
                c += "" if results[n]["pass"][k] else " ✗"
            cells.append(c)
        out.append(f"| {title} | " + " | ".join(cells) + f" | {target.get(k, '')} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tflite", type=Path, default=DEFAULT_TFLITE)
    ap.add_argument("--model", type=Path, default=ref.DEFAULT_MODEL, help="the converted body file (reference)")
    ap.add_argument("--n", type=int, default=150, help="clips in the default sample")
    ap.add_argument("--all", action="store_true", help="every clip of the manifest")
    ap.add_argument("--swift", help="the deepinfant-edge binary (its `tag` command)")
    ap.add_argument("--swift-model", help="--model for the Swift binary (default: its embedded body)")
    ap.add_argument("--no-report", action="store_true", help="print only; do not write training/report/")
    a = ap.parse_args(argv)

    rows = read_manifest(a.data)
    clips = rows if a.all else sample_clips(rows, a.n)
    paths = [a.data / "audio" / r["path"] for r in clips]
    m = ref.YAMNet.from_file(a.model)
    tfl = TFLite(a.tflite)
    swift_note, swift_out, swift_vs_ref = None, None, None
    if a.swift:
        swift_note = swift_supported(a.swift)
        if swift_note:
            print(f"swift port skipped: {swift_note}", file=sys.stderr)

    t_ref = t_tfl = 0.0
    parts = collections.defaultdict(list)
    per_source = collections.defaultdict(lambda: collections.defaultdict(list))
    cache = []
    t0 = time.time()
    for i, (r, p) in enumerate(zip(clips, paths)):
        y = load(p)
        starts = m.patches(len(y))
        z = m.padded(y)
        t = time.perf_counter()
        Et, St = tfl.embed(z, starts)
        t_tfl += time.perf_counter() - t
        t = time.perf_counter()
        E, S = m.embed(y)
        t_ref += time.perf_counter() - t
        c = compare(E, S, Et, St)
        parts["reference"].append(c)
        per_source["reference"][r["source"]].append(c)
        cache.append((r, Et, St, E, S))
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(clips)} clips, {time.time() - t0:.0f} s", flush=True)
    n_patches = sum(len(p["cos"]) for p in parts["reference"])
    if a.swift and not swift_note:
        t = time.perf_counter()
        try:
            swift_out = swift_run(a.swift, a.swift_model, paths, m.labels)
        except (RuntimeError, KeyError, OSError, ValueError) as e:
            swift_note = f"failed: {e}"
            print(f"swift port: {swift_note}", file=sys.stderr)
        t_swift = time.perf_counter() - t
        if swift_out is not None:
            d_emb = d_score = 0.0
            for i, (r, Et, St, Er, Sr) in enumerate(cache):
                E, S = swift_out[i]
                if E.shape != Et.shape or S.shape != St.shape:
                    swift_note = f"patch grid differs on {r['path']}: {E.shape[0]} patches vs {Et.shape[0]}"
                    break
                d_emb = max(d_emb, float(np.abs(E - Er).max()))
                d_score = max(d_score, float(np.abs(S - Sr).max()))
                c = compare(E, S, Et, St)
                parts["swift"].append(c)
                per_source["swift"][r["source"]].append(c)
            if not swift_note:
                swift_vs_ref = {"embedding_max_abs": d_emb, "score_max_abs": d_score}
                print(f"swift vs reference: embedding max |delta| {d_emb:.3g}, score max |delta| {d_score:.3g} "
                      "(JSON scores are rounded to 1e-4)")
            if swift_note:
                parts.pop("swift", None)
                per_source.pop("swift", None)
                print(f"swift port: {swift_note}", file=sys.stderr)

    results = {k: summarise(v) for k, v in parts.items()}
    sources = {k: {s: summarise(v) for s, v in sorted(d.items())} for k, d in per_source.items()}
    timing = {"reference_ms_per_patch": 1000 * t_ref / n_patches, "tflite_ms_per_patch": 1000 * t_tfl / n_patches}
    if swift_out is not None and "swift" in results:
        timing["swift_ms_per_patch_incl_process"] = 1000 * t_swift / n_patches
    print(table(results))
    print(f"{len(clips)} clips, {n_patches} patches; reference {timing['reference_ms_per_patch']:.1f} ms/patch, "
          f"TFLite {timing['tflite_ms_per_patch']:.1f} ms/patch (1 thread, shared machine)")
    if a.no_report:
        return 0 if all(all(r["pass"].values()) for r in results.values()) else 1

    counts = collections.Counter(r["source"] for r in clips)
    doc = {"clips": len(clips), "patches": n_patches, "selection": "all" if a.all else f"sample of {a.n}",
           "per_source_clips": dict(sorted(counts.items())), "results": results, "per_source": sources,
           "timing": timing, "targets": TARGETS, "swift_vs_reference": swift_vs_ref, "swift": swift_note or (a.swift and "compared") or "not run",
           "model_sha256": hashlib.sha256(Path(a.model).read_bytes()).hexdigest()}
    REPORT_JSON.parent.mkdir(parents=True, exist_ok=True)
    REPORT_JSON.write_text(json.dumps(doc, indent=1) + "\n")
    md = [
        "# YAMNet parity: float ports vs the int8 TFLite file",
        "",
        "Written by `training/yamnet_parity.py` "
        f"({'every clip' if a.all else f'a deterministic sample of {len(clips)} clips over every source'} of "
        "`../shared/data`; numbers also in `yamnet_parity.json`). Reference = `training/yamnet_reference.py` "
        "(NumPy, float64) on `Sources/Inference/Resources/yamnet.safetensors` "
        f"(sha256 `{doc['model_sha256'][:16]}…`); TFLite = `yamnet.tflite` run by ai_edge_litert (int8 kernels), "
        "embedding = `tower0/network/layer28/reduce_mean` dequantised. Patches on the offline grid "
        "(every 0.48 s, last one zero-padded). Top-1 agrees when TFLite's score of the port's top class equals "
        "TFLite's maximum (its scores are multiples of 1/256).",
        "",
        f"Clips: {len(clips)} ({', '.join(f'{s} {c}' for s, c in sorted(counts.items()))}); patches: {n_patches}.",
        "",
        table(results),
        "",
        f"Swift port: {swift_note or ('compared' if a.swift else 'not run (pass --swift BINARY)')}"
        + (f"; against the reference: embedding max abs Δ {swift_vs_ref['embedding_max_abs']:.3g}, score max abs Δ "
           f"{swift_vs_ref['score_max_abs']:.3g} (the JSON rounds scores to 1e-4)." if swift_vs_ref else "."),
        "",
        "Per source (reference):",
        "",
        "| source | patches | cosine median | cosine min | Baby cry max abs Δ | top-1 |",
        "|---|---|---|---|---|---|",
    ]
    for s, v in sources["reference"].items():
        md.append(f"| {s} | {v['patches']} | {v['cos_median']:.5f} | {v['cos_min']:.5f} | "
                  f"{v['baby_cry_max_abs']:.4f} | {v['top1']:.2%} |")
    md += ["", f"Time per 0.975 s patch on this machine (1 thread, shared with other jobs): reference "
           f"{timing['reference_ms_per_patch']:.1f} ms (front end + body, float64), TFLite int8 "
           f"{timing['tflite_ms_per_patch']:.1f} ms."]
    if "swift_ms_per_patch_incl_process" in timing:
        md[-1] += f" Swift `tag` {timing['swift_ms_per_patch_incl_process']:.1f} ms including process start and file reading."
    md += ["", "The int8 file and the float ports differ by design (int8 activations round every layer's output to "
           "1/255 of its range; layer 22's output range ends at 5.33 instead of ReLU6's 6); the targets are per-patch "
           "cosine ≥ 0.99 (median ≥ 0.999), Baby cry |Δ| ≤ 0.1, top-1 ≥ 95 %.", ""]
    REPORT_MD.write_text("\n".join(md))
    print(f"wrote {REPORT_MD} and {REPORT_JSON}")
    return 0 if all(all(r["pass"].values()) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
