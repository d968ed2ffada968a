#!/usr/bin/env python3
"""Extra not-cry audio for the cry detector, from Debian packages (never from the sources of ../shared/data).

Why: the gate's false alarms come from sound classes with 5-16 clips in ../shared/data (cats, crows, sirens,
pigs, sheep, music) and from continuous adult speech, of which FSDD's half-second digits from a handful of
speakers give little. More sources of the same sound classes would include the held-back fold (ESC-50, FSDD),
so the extras come from elsewhere, and they only ever go into training: every evaluation stays on the grouped
folds of ../shared/data.

What (pinned package versions; licences from each package's copyright file):
- speech: Tux Paint's spoken stamp descriptions (tuxpaint-stamps-default, GPL-2; ~7,400 short recordings in
  12+ languages, ~3 h): continuous speech from many speakers and languages.
- sound effects: Tux Paint's stamp sounds (108: animals, household, music instruments, vehicles).
- music: the soundtrack of fillets-ng-data (GPL-2).
- set 2 adds sound effects: qabcs-data's noises (~240 animals, instruments, vehicles, household; GPL-3+) and
  Scratch 1.4's sound library (~115: animals with three cats, laughs, coughs, screams, effects, music loops;
  CC-BY-SA-3.0), less anything named like a baby or a cry (Scratch has a BabyCry).
- evaluation only, never trained on: Asterisk's telephony prompts (asterisk-core-sounds-*-wav, CC-BY-SA-3.0 /
  CC-BY-3.0; 5 voice sets, 8 kHz), played back to back per voice as long continuous talking
  (`speech_streams_for_eval`): a false-alarm measurement on minutes of speech that no recipe has heard.

`python3 training/extra_negatives.py` downloads the packages with `apt-get download` (no root needed), decodes,
resamples to 16 kHz and caches log-mel features in training/cache/extra.npz (set 2 adds extra_sfx2.npz); train.py's `extra_negatives`
option reads that cache. `load_raw` gives the same items as raw 16 kHz audio (for yamnet_head.py).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import features as fx  # noqa: E402

PACKAGES = {
    "tuxpaint-stamps-default": "2022.06.04-1",
    "asterisk-core-sounds-en-wav": "1.6.1-1",
    "asterisk-core-sounds-es-wav": "1.6.1-1",
    "asterisk-core-sounds-fr-wav": "1.6.1-1",
    "asterisk-core-sounds-it-wav": "1.6.1-1",
    "asterisk-core-sounds-ru-wav": "1.6.1-1",
    "fillets-ng-data": "1.0.1-1.1",
    "qabcs-data": "1.0.2-6",
    "scratch": "1.4.0.6~dfsg1-6.1",
}
WORK = fx.CACHE / "extra"
CACHE_FILE = fx.CACHE / "extra.npz"
STAMPS = "usr/share/tuxpaint/stamps"
ASTERISK = "usr/share/asterisk/sounds"
MUSIC = "usr/share/games/fillets-ng/music"
QABCS_NOISES = "usr/share/qabcs/abcs/all/noises"
SCRATCH_SOUNDS = "usr/share/scratch/Media/Sounds"
NOT_NEGATIVE = re.compile(r"baby|cry|crie|infant", re.I)  # an infant cry is never a negative
CACHE_VERSION = 1


def fetch() -> Path:
    """Downloads and unpacks the pinned packages into training/cache/extra (once)."""
    root = WORK / "root"
    debs = WORK / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for name, version in PACKAGES.items():
        if not list(debs.glob(f"{name}_*.deb")):
            subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debs, check=True)
    wanted = sorted(p.name for p in debs.glob("*.deb"))
    stamp = WORK / "root.debs"
    if not root.exists() or not stamp.exists() or stamp.read_text().split() != wanted:
        shutil.rmtree(root, ignore_errors=True)
        tmp = WORK / "root.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for deb in wanted:
            subprocess.run(["dpkg-deb", "-x", str(debs / deb), str(tmp)], check=True)
        tmp.rename(root)
        stamp.write_text("\n".join(wanted))
    return root


def load16k(path: Path) -> np.ndarray:
    import soundfile as sf
    import soxr
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != fx.SR:
        y = soxr.resample(y, sr, fx.SR).astype(np.float32)
    return y


def inventory(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """{kind: [(group, path)]}: the group is the language or voice for speech, the stamp folder for sounds."""
    speech, sfx, music = [], [], []
    for p in sorted((root / STAMPS).rglob("*.ogg")):
        rel = p.relative_to(root / STAMPS)
        if "_desc" in p.name:
            lang = p.stem.split("_desc")[-1].lstrip("_") or "en"
            speech.append((f"tuxpaint_{lang}", p))
        elif rel.parts[0] != "symbols":  # the symbols' own sounds are spoken letters and digits: left out
            sfx.append((rel.parts[0] + "/" + rel.parts[1] if len(rel.parts) > 2 else rel.parts[0], p))
    held_out = [(f"asterisk_{voice.name}", p) for voice in sorted((root / ASTERISK).iterdir())
                for p in sorted(voice.rglob("*.wav"))]
    music = [("fillets", p) for p in sorted((root / MUSIC).glob("*.ogg"))]
    sfx2 = [("qabcs", p) for p in sorted((root / QABCS_NOISES).glob("*.ogg"))]
    sfx2 += [("scratch/" + p.parent.name, p) for p in sorted((root / SCRATCH_SOUNDS).rglob("*"))
             if p.suffix.lower() in (".wav", ".mp3")]
    sfx2 = [(g, p) for g, p in sfx2 if not NOT_NEGATIVE.search(p.name)]
    return {"speech": speech, "sfx": sfx, "music": music, "eval_speech": held_out, "sfx2": sfx2}


def build_raw(seed: int = 7, streams: int = 400, stream_seconds: float = 6.0, music_segments: int = 40) -> dict:
    """Set 1's items as raw 16 kHz audio ({"sfx", "speech", "music"}: lists of float32 waveforms): each sound
    effect whole (at least 0.25 s); `streams` stretches of continuous speech (one group's clips back to back, as
    one person talking); `music_segments` random 10 s stretches of the soundtrack. `build` is this through log-mel,
    so both hold the same items in the same order (models on other features, e.g. yamnet_head.py, use this)."""
    root = fetch()
    inv = inventory(root)
    rng = np.random.default_rng(seed)
    sfx = []
    for group, p in inv["sfx"]:
        y = load16k(p)
        if len(y) >= fx.SR // 4:
            sfx.append(y)
    by_group: dict[str, list[Path]] = {}
    for group, p in inv["speech"]:
        by_group.setdefault(group, []).append(p)
    groups = sorted(by_group)
    need = int(stream_seconds * fx.SR)
    speech, cache = [], {}
    for i in range(streams):
        g = groups[i % len(groups)]
        parts, total = [], 0
        while total < need:
            p = by_group[g][rng.integers(len(by_group[g]))]
            if p not in cache:
                cache[p] = load16k(p)
            parts.append(cache[p])
            total += len(cache[p])
        y = np.concatenate(parts)
        s = int(rng.integers(0, len(y) - need + 1))
        speech.append(y[s:s + need])
    music = []
    tracks = [load16k(p) for _, p in inv["music"]]
    seg = 10 * fx.SR
    for i in range(music_segments):
        y = tracks[i % len(tracks)]
        s = int(rng.integers(0, max(1, len(y) - seg)))
        music.append(y[s:s + seg])
    print(f"extra negatives: {len(sfx)} sound effects, {len(speech)} speech streams from {len(groups)} voices, "
          f"{len(music)} music segments from {len(tracks)} tracks")
    return {"sfx": sfx, "speech": speech, "music": music}


def build(seed: int = 7, streams: int = 400, stream_seconds: float = 6.0, music_segments: int = 40) -> dict:
    """Set 1's log-mel features (the items of `build_raw`, same order)."""
    raw = build_raw(seed, streams, stream_seconds, music_segments)
    return {k: [fx.logmel(y) for y in v] for k, v in raw.items()}


def build_set2_raw() -> dict:
    """What set 2 adds to set 1, as raw 16 kHz audio: its sound effects, each whole (at least 0.25 s)."""
    inv = inventory(fetch())
    sfx2 = [y for y in (load16k(p) for _, p in inv["sfx2"]) if len(y) >= fx.SR // 4]
    print(f"set 2: {len(sfx2)} more sound effects")
    return {"sfx2": sfx2}


def load_raw(extra_set: int = 1) -> dict[str, list[np.ndarray]]:
    """The same items as `load(extra_set)`, as raw 16 kHz float32 waveforms instead of log-mel (not cached:
    ~1 min to decode; callers cache what they compute from them)."""
    out = build_raw()
    if extra_set >= 2:
        out |= build_set2_raw()
    return out


def build_set2() -> dict:
    """What set 2 adds to set 1: its sound effects, each whole."""
    return {k: [fx.logmel(y) for y in v] for k, v in build_set2_raw().items()}


def cached(path: Path, make, rebuild: bool = False) -> dict[str, list[np.ndarray]]:
    """{name: list of log-mel arrays} from the .npz at `path`, made with `make()` and saved when missing."""
    if path.exists() and not rebuild:
        z = np.load(path, allow_pickle=True)
        if int(z["version"]) == CACHE_VERSION:
            return {k: list(z[k]) for k in z.files if k != "version"}
    out = make()
    arr = {k: np.empty(len(v), object) for k, v in out.items()}
    for k, v in out.items():
        for i, x in enumerate(v):
            arr[k][i] = x
    np.savez(path, version=CACHE_VERSION, **arr)
    return out


def load(extra_set: int = 1, rebuild: bool = False) -> dict[str, list[np.ndarray]]:
    """The extras of set 1 ({"sfx", "speech", "music"}: lists of [frames, 64] log-mel), or of set 2 (the same
    plus "sfx2"), built and cached on first use."""
    out = cached(CACHE_FILE, build, rebuild)
    if extra_set >= 2:
        out |= cached(CACHE_FILE.with_name("extra_sfx2.npz"), build_set2, rebuild)
    return out


def speech_streams_for_eval(minutes_per_voice: float = 4.0, seed: int = 11) -> dict[str, np.ndarray]:
    """{voice: 16 kHz audio}: each held-out Asterisk voice's prompts in a seeded random order, back to back
    without gaps, cut to `minutes_per_voice` (never used for training)."""
    root = fetch()
    by_voice: dict[str, list[Path]] = {}
    for group, p in inventory(root)["eval_speech"]:
        by_voice.setdefault(group, []).append(p)
    rng = np.random.default_rng(seed)
    out, need = {}, int(minutes_per_voice * 60 * fx.SR)
    for voice, paths in sorted(by_voice.items()):
        parts, total = [], 0
        for i in rng.permutation(len(paths)):
            y = load16k(paths[i])
            parts.append(y)
            total += len(y)
            if total >= need:
                break
        out[voice] = np.concatenate(parts)[:need]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rebuild", action="store_true", help="rebuild the feature cache")
    ap.add_argument("--set", type=int, default=1, choices=(1, 2), help="which set of extras (2 = 1 + more sound effects)")
    a = ap.parse_args()
    out = load(a.set, a.rebuild)
    for k, v in out.items():
        print(f"{k}: {len(v)} clips, {sum(x.shape[0] for x in v) * 512 / fx.SR / 60:.1f} min")


if __name__ == "__main__":
    main()
