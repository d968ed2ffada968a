#!/usr/bin/env python3
"""Convert Google's int8 `yamnet.tflite` into the YAMNet body model file (docs/model-format-yamnet.md).

Reads the flatbuffer with the `tflite` package (tensors, per-channel quantisation, buffers, op options), checks
every assumption the float re-implementation relies on, and writes `Sources/Inference/Resources/yamnet.safetensors`:

* `layers.{i}.weight` I8 (conv `[32, 3, 3, 1]`, depthwise `[C, 3, 3]`, pointwise `[out, in]`), `.weight_scale` F32
  (per output channel), `.bias` F32 (= int32 bias x its per-channel scale); `classifier.weight` I8 `[521, 1024]`,
  `.weight_scale` F32 `[521]` (the file's single scale repeated), `.bias` F32;
* the 521 labels and AudioSet ids of `yamnet_class_map.csv`, the 27-layer list, the front-end parameters,
  `input_clip` = the QUANTIZE op's range `[scale (-128 - zp), scale (127 - zp)]`, provenance (sha256, Apache-2.0);
* a self-test: the first 15,600 samples of `Tests/GateTests/Fixtures/cry-hungry.flac`, its embedding and scores
  from `yamnet_reference.py` (float64) on the converted tensors, tolerance 1e-4.

Refuses (exit status 1, one line saying what differs) when the file's sha256 is not the TF Hub one, the op
sequence differs, a weight zero point is not 0, a conv is not SAME/ReLU6/undilated, the Hann window or the mel
matrix inside the graph differ from the formulas of the spec (1e-6), the mel bias is not 0.001, or the reference
disagrees with the TFLite interpreter on the self-test patch (cosine < 0.99; skipped with --no-interpreter-check).
The output is deterministic (same bytes on every run).

    python3 training/yamnet_convert.py [--tflite ../shared/models/yamnet/yamnet.tflite] [--out FILE]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import yamnet_reference as ref  # noqa: E402

YAMNET_DIR = ROOT.parent / "shared" / "models" / "yamnet"
DEFAULT_TFLITE = YAMNET_DIR / "yamnet.tflite"
DEFAULT_CLASS_MAP = YAMNET_DIR / "yamnet_class_map.csv"
DEFAULT_OUT = ROOT / "Sources" / "Inference" / "Resources" / "yamnet.safetensors"
DEFAULT_SELFTEST_AUDIO = ROOT / "Tests" / "GateTests" / "Fixtures" / "cry-hungry.flac"
TFLITE_SHA256 = "10c95ea3eb9a7bb4cb8bddf6feb023250381008177ac162ce169694d05c317de"
CLASS_MAP_SHA256 = "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2"
EMBEDDING_TENSOR = "tower0/network/layer28/reduce_mean"
SELFTEST_TOLERANCE = 1e-4

FRONT_OPS = ["STRIDED_SLICE", "RESHAPE", "GATHER", "RESHAPE", "MUL", "PAD", "RESHAPE", "RFFT2D", "RESHAPE",
             "COMPLEX_ABS", "FULLY_CONNECTED", "LOG", "RESHAPE", "QUANTIZE", "RESHAPE", "SPLIT"]
BODY_OPS = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 13
TAIL_OPS = ["MEAN", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"]
EXPECTED_OPS = FRONT_OPS + BODY_OPS + TAIL_OPS          # 47

FEATURES = {"type": "yamnet_logmel", "sample_rate": 16000, "window_length": 400, "hop_length": 160,
            "n_fft": 512, "n_mels": 64, "fmin": 125.0, "fmax": 7500.0, "window": "hann_periodic",
            "magnitude": True, "mel_htk": True, "log_offset": 0.001,
            "patch_frames": 96, "patch_hop_frames": 48}


class Refused(Exception):
    pass


def need(ok: bool, msg: str) -> None:
    if not ok:
        raise Refused(msg)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------ graph access
class Graph:
    def __init__(self, path: Path):
        import tflite
        self.tfl = tflite
        self.buf = Path(path).read_bytes()
        self.m = tflite.Model.GetRootAsModel(self.buf, 0)
        need(self.m.SubgraphsLength() == 1, f"expected 1 subgraph, got {self.m.SubgraphsLength()}")
        self.g = self.m.Subgraphs(0)
        self.opnames = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.types = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}

    def op(self, i: int):
        return self.g.Operators(i)

    def op_name(self, i: int) -> str:
        c = self.m.OperatorCodes(self.op(i).OpcodeIndex())
        return self.opnames.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), "?")

    def inputs(self, i: int) -> list[int]:
        o = self.op(i)
        return [o.Inputs(j) for j in range(o.InputsLength())]

    def outputs(self, i: int) -> list[int]:
        o = self.op(i)
        return [o.Outputs(j) for j in range(o.OutputsLength())]

    def options(self, i: int, cls):
        o = self.op(i).BuiltinOptions()
        x = cls()
        x.Init(o.Bytes, o.Pos)
        return x

    def name(self, t: int) -> str:
        return self.g.Tensors(t).Name().decode()

    def type(self, t: int) -> str:
        return self.types[self.g.Tensors(t).Type()]

    def shape(self, t: int) -> tuple[int, ...]:
        x = self.g.Tensors(t)
        return tuple(int(s) for s in x.ShapeAsNumpy()) if x.ShapeLength() else ()

    def data(self, t: int) -> np.ndarray:
        """The constant buffer of tensor t as a little-endian array of its type and shape."""
        x = self.g.Tensors(t)
        dt = {"FLOAT32": "<f4", "INT32": "<i4", "INT8": "i1"}[self.type(t)]
        b = self.m.Buffers(x.Buffer())
        need(b is not None and b.DataLength() > 0, f"tensor {self.name(t)} has no constant data")
        a = np.frombuffer(b.DataAsNumpy().tobytes(), dtype=dt)
        need(a.size == int(np.prod(self.shape(t), dtype=np.int64)), f"tensor {self.name(t)}: buffer size")
        return a.reshape(self.shape(t))

    def quant(self, t: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(scales float32, zero points int64, quantized dimension); empty arrays when unquantised."""
        q = self.g.Tensors(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        s = np.array([q.Scale(i) for i in range(q.ScaleLength())], dtype=np.float32)
        z = np.array([q.ZeroPoint(i) for i in range(q.ZeroPointLength())], dtype=np.int64)
        return s, z, int(q.QuantizedDimension())


# ------------------------------------------------------------------------------------------ checks + extraction
def check_front_end(G: Graph) -> dict:
    """The float front end inside the graph equals the spec's; returns the QUANTIZE range."""
    tfl = G.tfl
    # 0 STRIDED_SLICE: the whole 15600-sample input, stride 1
    i = G.inputs(0)
    need(G.shape(i[0]) == (15600,) and G.type(i[0]) == "FLOAT32", f"input waveform {G.shape(i[0])} {G.type(i[0])}")
    need([G.data(t).tolist() for t in i[1:]] == [[0], [15600], [1]], "STRIDED_SLICE is not [0:15600:1]")
    # 1 RESHAPE [195, 80], 2 GATHER rows 2t..2t+4 (axis 0), 3 RESHAPE [96, 400]: frame t = samples [160 t, 160 t + 400)
    need(G.data(G.inputs(1)[1]).tolist() == [195, 80], "framing RESHAPE is not [195, 80]")
    need(G.options(2, tfl.GatherOptions).Axis() == 0, "GATHER axis is not 0")
    idx = G.data(G.inputs(2)[1])
    need(np.array_equal(idx, 2 * np.arange(96)[:, None] + np.arange(5)[None, :]),
         "GATHER indices are not rows 2t..2t+4 (frames every 160 samples of 400)")
    need(G.data(G.inputs(3)[1]).tolist() == [96, 400], "frame RESHAPE is not [96, 400]")
    # 4 MUL by the periodic Hann window
    need(G.options(4, tfl.MulOptions).FusedActivationFunction() == 0, "window MUL has a fused activation")
    win = G.data(G.inputs(4)[1]).astype(np.float64)
    dw = float(np.abs(win - ref.hann_periodic(400)).max()) if win.shape == (400,) else np.inf
    need(dw <= 1e-6, f"the graph's window differs from the periodic Hann formula by {dw:.3g}")
    # 5 PAD to 512 at the end, 7 RFFT2D of length 512, 9 COMPLEX_ABS (magnitude)
    need(G.data(G.inputs(5)[1]).tolist() == [[0, 0], [0, 112]], "PAD is not 400 -> 512 at the end")
    need(G.data(G.inputs(7)[1]).tolist() == [1, 512], "RFFT2D length is not [1, 512]")
    need(G.shape(G.outputs(9)[0]) == (96, 257), "magnitude spectrogram is not [96, 257]")
    # 10 FULLY_CONNECTED: the mel matrix [64, 257] and the +0.001 log offset as its bias, no activation
    fc = G.options(10, tfl.FullyConnectedOptions)
    need(fc.FusedActivationFunction() == 0, "mel FULLY_CONNECTED has a fused activation")
    _, w_t, b_t = G.inputs(10)
    mel = G.data(w_t).astype(np.float64)
    spec_mel = ref.mel_matrix(64, 257, 16000, FEATURES["fmin"], FEATURES["fmax"]).T
    dm = float(np.abs(mel - spec_mel).max()) if mel.shape == spec_mel.shape else np.inf
    need(dm <= 1e-6, f"the graph's mel matrix differs from the spec's formula by {dm:.3g}")
    bias = G.data(b_t)
    need(bias.shape == (64,) and bool(np.all(bias == np.float32(FEATURES["log_offset"]))),
         f"mel bias is not 0.001 everywhere: {np.unique(bias)[:5]}")
    # 11 LOG, 12 RESHAPE [1, 96, 64], 13 QUANTIZE (per tensor), 14 RESHAPE [1, 96, 64, 1], 15 SPLIT into 1
    need(G.data(G.inputs(12)[1]).tolist() == [1, 96, 64], "feature RESHAPE is not [1, 96, 64]")
    s, z, _ = G.quant(G.outputs(13)[0])
    need(G.type(G.outputs(13)[0]) == "INT8" and len(s) == 1 and len(z) == 1, "QUANTIZE is not per-tensor int8")
    need(G.data(G.inputs(14)[1]).tolist() == [1, 96, 64, 1], "ExpandDims is not [1, 96, 64, 1]")
    need(G.options(15, tfl.SplitOptions).NumSplits() == 1 and G.data(G.inputs(15)[0]).reshape(-1).tolist() == [0],
         "SPLIT is not a single split")
    scale, zp = float(s[0]), int(z[0])
    return {"scale": scale, "zero_point": zp, "clip": [scale * (-128 - zp), scale * (127 - zp)],
            "window_max_diff": dw, "mel_max_diff": dm}


def check_chain(G: Graph) -> None:
    """Each op reads the previous op's output (a straight chain from the graph input to its output)."""
    need(G.g.InputsLength() == 1 and G.g.OutputsLength() == 1, "graph must have one input and one output")
    need(G.inputs(0)[0] == G.g.Inputs(0), "op 0 does not read the graph input")
    for i in range(1, G.g.OperatorsLength()):
        data_in = G.inputs(i)[1] if G.op_name(i) == "SPLIT" else G.inputs(i)[0]
        need(len(G.outputs(i - 1)) == 1 and data_in == G.outputs(i - 1)[0],
             f"op {i} ({G.op_name(i)}) does not read op {i - 1}'s output")
    need(G.outputs(G.g.OperatorsLength() - 1)[0] == G.g.Outputs(0), "the last op is not the graph output")


def weights_and_bias(G: Graph, op: int, qdim: int, out_ch: int, what: str):
    """(int8 weights, float32 per-channel scales [out_ch], float32 bias) of a conv/FC op; zero points checked."""
    ins = G.inputs(op)
    need(len(ins) == 3 and ins[2] >= 0, f"{what}: no bias")
    w_t, b_t = ins[1], ins[2]
    need(G.type(w_t) == "INT8" and G.type(b_t) == "INT32", f"{what}: weights {G.type(w_t)}, bias {G.type(b_t)}")
    q = G.data(w_t)
    ws, wz, wd = G.quant(w_t)
    need(len(ws) in (1, out_ch), f"{what}: {len(ws)} weight scales for {out_ch} channels")
    need(len(ws) == 1 or wd == qdim, f"{what}: weights quantised along dimension {wd}, expected {qdim}")
    need(len(wz) == len(ws) and bool(np.all(wz == 0)), f"{what}: weight zero points are not all 0")
    need(bool(np.all(ws > 0)) and bool(np.all(np.isfinite(ws))), f"{what}: weight scales not positive")
    bq = G.data(b_t)
    bs, bz, _ = G.quant(b_t)
    need(bq.shape == (out_ch,), f"{what}: bias shape {bq.shape}")
    need(len(bs) in (1, out_ch) and len(bz) == len(bs) and bool(np.all(bz == 0)), f"{what}: bias quantisation")
    # TFLite's convention (bias scale = input scale x weight scale); a mismatch means the graph is not what we think
    in_s = G.quant(ins[0])[0]
    need(len(in_s) == 1, f"{what}: input not per-tensor quantised")
    rel = float(np.abs(bs.astype(np.float64) - float(in_s[0]) * ws.astype(np.float64)).max() / float(bs.max()))
    need(rel <= 1e-5, f"{what}: bias scale is not input scale x weight scale (rel {rel:.3g})")
    scale = np.broadcast_to(ws, (out_ch,)).astype(np.float32)
    bias = (bq.astype(np.float64) * np.broadcast_to(bs, (out_ch,)).astype(np.float64)).astype(np.float32)
    return q, np.ascontiguousarray(scale), bias


def extract_body(G: Graph) -> tuple[list[dict], dict[str, np.ndarray], list[float]]:
    tfl = G.tfl
    RELU6, SAME = tfl.ActivationFunctionType.RELU6, tfl.Padding.SAME
    layers, tensors, act_ranges = [], {}, []
    channels = 1
    h, w = 96, 64
    for li, op in enumerate(range(len(FRONT_OPS), len(FRONT_OPS) + len(BODY_OPS))):
        kind = G.op_name(op)
        what = f"layer {li} (op {op} {kind})"
        x_t, w_t = G.inputs(op)[:2]
        need(G.shape(x_t) == (1, h, w, channels), f"{what}: input {G.shape(x_t)}, expected {(1, h, w, channels)}")
        if kind == "CONV_2D":
            o = G.options(op, tfl.Conv2DOptions)
            need(o.DilationHFactor() == 1 and o.DilationWFactor() == 1, f"{what}: dilated")
            out_ch, kh, kw, cin = G.shape(w_t)
            need(cin == channels, f"{what}: weights take {cin} channels, input has {channels}")
        else:
            o = G.options(op, tfl.DepthwiseConv2DOptions)
            need(o.DilationHFactor() == 1 and o.DilationWFactor() == 1, f"{what}: dilated")
            need(o.DepthMultiplier() == 1, f"{what}: depth multiplier {o.DepthMultiplier()}")
            one, kh, kw, out_ch = G.shape(w_t)
            need(one == 1 and out_ch == channels, f"{what}: depthwise weights {G.shape(w_t)}")
        need(o.Padding() == SAME, f"{what}: padding is not SAME")
        need(o.FusedActivationFunction() == RELU6, f"{what}: fused activation is not RELU6")
        need(o.StrideH() == o.StrideW(), f"{what}: strides {o.StrideH()}x{o.StrideW()}")
        need(kh == kw, f"{what}: kernel {kh}x{kw}")
        stride, k = int(o.StrideH()), int(kh)
        q, scale, bias = weights_and_bias(G, op, 0 if kind == "CONV_2D" else 3, out_ch, what)
        if kind == "CONV_2D" and li == 0:
            need(k == 3 and channels == 1, f"{what}: the first conv must be 3x3 on one channel")
            layer = {"op": "conv", "kernel": k, "stride": stride, "filters": int(out_ch)}
            wq = q                                                     # [out, kh, kw, 1]
        elif kind == "CONV_2D":
            need(k == 1 and stride == 1, f"{what}: a later conv must be 1x1 stride 1 (pointwise)")
            layer = {"op": "pointwise", "filters": int(out_ch)}
            wq = q.reshape(out_ch, channels)                           # [out, in]
        else:
            need(li > 0, f"{what}: depthwise first")
            layer = {"op": "depthwise", "kernel": k, "stride": stride}
            wq = q[0].transpose(2, 0, 1)                               # [1, kh, kw, C] -> [C, kh, kw]
        h, w = -(-h // stride), -(-w // stride)
        y_t = G.outputs(op)[0]
        need(G.shape(y_t) == (1, h, w, out_ch), f"{what}: output {G.shape(y_t)}, expected {(1, h, w, out_ch)}")
        ys, yz, _ = G.quant(y_t)
        act_ranges.append(float(ys[0]) * (127 - int(yz[0])))
        p = f"layers.{li}"
        tensors[p + ".weight"] = np.ascontiguousarray(wq, dtype=np.int8)
        tensors[p + ".weight_scale"] = scale
        tensors[p + ".bias"] = bias
        layers.append(layer)
        channels = int(out_ch)
    need(channels == 1024 and (h, w) == (3, 2), f"last map {(h, w, channels)}, expected (3, 2, 1024)")
    return layers, tensors, act_ranges


def extract_tail(G: Graph, n_classes: int) -> dict[str, np.ndarray]:
    tfl = G.tfl
    mean_op, fc_op = len(FRONT_OPS) + len(BODY_OPS), len(FRONT_OPS) + len(BODY_OPS) + 1
    need(G.data(G.inputs(mean_op)[1]).tolist() == [1, 2], "MEAN is not over H and W")
    need(G.name(G.outputs(mean_op)[0]) == EMBEDDING_TENSOR, f"MEAN output is not {EMBEDDING_TENSOR}")
    fc = G.options(fc_op, tfl.FullyConnectedOptions)
    need(fc.FusedActivationFunction() == 0, "classifier has a fused activation")
    need(G.shape(G.inputs(fc_op)[1]) == (n_classes, 1024), f"classifier weights {G.shape(G.inputs(fc_op)[1])}")
    q, scale, bias = weights_and_bias(G, fc_op, 0, n_classes, "classifier")
    return {"classifier.weight": np.ascontiguousarray(q, dtype=np.int8), "classifier.weight_scale": scale,
            "classifier.bias": bias}


def read_class_map(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    need([int(r["index"]) for r in rows] == list(range(len(rows))), "class map indices are not 0..n-1")
    labels, mids = [r["display_name"] for r in rows], [r["mid"] for r in rows]
    need(all(labels) and all(mids) and len(set(mids)) == len(mids), "class map has empty or repeated entries")
    return labels, mids


def interpreter_check(tflite_path: Path, waveform: np.ndarray, emb: np.ndarray, scores: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(tflite_path), experimental_preserve_all_tensors=True, num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    t = {d["name"]: d for d in it.get_tensor_details()}[EMBEDDING_TENSOR]
    it.set_tensor(it.get_input_details()[0]["index"], waveform.astype(np.float32))
    it.invoke()
    s, z = t["quantization"]
    e = (it.get_tensor(t["index"]).reshape(-1).astype(np.float64) - z) * s
    sc = it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1).astype(np.float64)
    cos = float(e @ emb / (np.linalg.norm(e) * np.linalg.norm(emb)))
    return {"cosine": cos, "max_score_delta": float(np.abs(sc - scores).max()),
            "baby_cry_tflite": float(sc[20]), "baby_cry_reference": float(scores[20])}


# ------------------------------------------------------------------------------------------ main
def convert(tflite_path: Path, class_map: Path, out: Path, selftest_audio: Path, interpreter: bool = True) -> dict:
    from export_model import _write_safetensors, FORMAT, FORMAT_VERSION, METADATA_KEY, SELFTEST_TENSOR
    import soundfile as sf

    digest = sha256(tflite_path)
    need(digest == TFLITE_SHA256, f"{tflite_path}: sha256 {digest}, expected the TF Hub file's {TFLITE_SHA256}")
    cm_digest = sha256(class_map)
    need(cm_digest == CLASS_MAP_SHA256, f"{class_map}: sha256 {cm_digest}, expected {CLASS_MAP_SHA256}")
    G = Graph(tflite_path)
    ops = [G.op_name(i) for i in range(G.g.OperatorsLength())]
    need(ops == EXPECTED_OPS, f"op sequence differs from the expected 47 ops: {ops}")
    check_chain(G)
    fe = check_front_end(G)
    layers, tensors, act_ranges = extract_body(G)
    labels, mids = read_class_map(class_map)
    tensors.update(extract_tail(G, len(labels)))
    need(G.shape(G.g.Outputs(0)) == (1, len(labels)), "output is not [1, n_classes]")

    info = sf.info(str(selftest_audio))
    need(info.samplerate == 16000 and info.channels == 1, f"{selftest_audio}: {info.samplerate} Hz, {info.channels} ch")
    y, _ = sf.read(str(selftest_audio), dtype="float32", frames=15600)
    need(y.shape == (15600,), f"{selftest_audio}: shorter than 15600 samples")
    tensors[SELFTEST_TENSOR] = np.ascontiguousarray(y, dtype=np.float32)

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "name": "yamnet", "version": "1.0.0", "task": "audioset",
        "labels": labels,
        "architecture": {"type": "yamnet", "activation": "relu6", "padding": "same", "layers": layers,
                         "embedding_dim": 1024, "n_classes": len(labels), "input_clip": fe["clip"]},
        "features": dict(FEATURES),
        "class_mids": mids,
        "provenance": {
            "source": "TF Hub lite-model_yamnet_classification_tflite_1 (yamnet.tflite, full-int8 TFLite of "
                      "YAMNet, tensorflow/models research/audioset/yamnet)",
            "file": "yamnet.tflite", "bytes": len(G.buf), "sha256": digest,
            "class_map": "yamnet_class_map.csv", "class_map_sha256": cm_digest,
            "license": "Apache-2.0",
            "notice": "Copyright 2019 The TensorFlow Authors. Licensed under the Apache License, Version 2.0. "
                      "Weights converted by training/yamnet_convert.py (int8 weights and per-channel scales as in "
                      "the file; int32 biases times their scales as float32).",
        },
        "selftest": {"input_tensor": SELFTEST_TENSOR, "expected": [], "embedding_tensor": "selftest.embedding",
                     "tolerance": SELFTEST_TOLERANCE},
    }
    model = ref.YAMNet.from_tensors(tensors, meta)
    emb, scores = model.body(model.frontend(y))
    tensors["selftest.embedding"] = emb.astype(np.float32)
    meta["selftest"]["expected"] = [float(v) for v in scores]
    check = interpreter_check(tflite_path, y, emb, scores) if interpreter else None
    if check is not None:
        need(check["cosine"] >= 0.99, f"reference vs TFLite on the self-test patch: embedding cosine {check['cosine']:.4f}")

    _write_safetensors(Path(out), tensors, {METADATA_KEY: json.dumps(meta, separators=(",", ":"), ensure_ascii=False)})
    back = ref.YAMNet.from_file(out)
    d = back.selftest()
    need(d <= SELFTEST_TOLERANCE, f"the written file fails its own self-test ({d:.3g})")
    return {"out": str(out), "bytes": Path(out).stat().st_size, "sha256": sha256(out), "layers": layers,
            "input_clip": fe["clip"], "quantize": (fe["scale"], fe["zero_point"]),
            "window_max_diff": fe["window_max_diff"], "mel_max_diff": fe["mel_max_diff"],
            "activation_ranges": act_ranges, "selftest_delta": d, "interpreter": check,
            "params": int(sum(v.size for k, v in tensors.items() if not k.startswith("selftest.") and not k.endswith("_scale")))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite", type=Path, default=DEFAULT_TFLITE)
    ap.add_argument("--class-map", type=Path, default=DEFAULT_CLASS_MAP)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--selftest-audio", type=Path, default=DEFAULT_SELFTEST_AUDIO)
    ap.add_argument("--no-interpreter-check", action="store_true", help="skip the TFLite comparison of the self-test patch")
    a = ap.parse_args(argv)
    try:
        r = convert(a.tflite, a.class_map, a.out, a.selftest_audio, interpreter=not a.no_interpreter_check)
    except Refused as e:
        print(f"yamnet_convert: refused: {e}", file=sys.stderr)
        return 1
    print(f"wrote {r['out']}: {r['bytes']:,} bytes, sha256 {r['sha256']}")
    print(f"  {len(r['layers'])} layers, {r['params']:,} parameters; QUANTIZE scale {r['quantize'][0]!r} zp {r['quantize'][1]} "
          f"-> input_clip {r['input_clip']}")
    print(f"  graph window vs formula {r['window_max_diff']:.3g}, mel matrix vs formula {r['mel_max_diff']:.3g}")
    for i, (l, hi) in enumerate(zip(r["layers"], r["activation_ranges"])):
        note = "" if hi >= 6.0 - 1e-6 else f"   (int8 output range tops at {hi:.3f} < 6)"
        print(f"  layer {i:2d}: {json.dumps(l)}{note}")
    print(f"  self-test round trip max |delta| {r['selftest_delta']:.3g}")
    if r["interpreter"]:
        c = r["interpreter"]
        print(f"  vs TFLite on the self-test patch: embedding cosine {c['cosine']:.5f}, max score |delta| "
              f"{c['max_score_delta']:.4f}, Baby cry {c['baby_cry_reference']:.4f} (TFLite {c['baby_cry_tflite']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
