#!/usr/bin/env python3
"""Structural probes: small models written the ways exporters write them, run through quantize and verify.

    python3 tools/bench/probes.py [--jar target/qwt-onnx.jar] [--out /tmp/qwt-probes]

Each probe is a model with random weights (onnx.helper, seeded) and 24 calibration / 8 held-out samples, made to
have one form a real export has: recurrent cells with states as inputs (DTLN-like LSTMs), a bidirectional GRU
keyword spotter, a CRNN (convolutions, a BiLSTM, dynamic width), an opset-20 encoder (LayerNormalization, Gelu,
attention MatMuls of two activations), an audio front-end (STFT, MelWeightMatrix, Log, depthwise convolutions,
squeeze-excite, Resize), a weight-first MatMul and a transposed Gemm beside a shared weight, nodes without names,
IR version 14 (Python's onnx 1.23), outputs that are ArgMax indices and booleans only, a network whose modules
are local functions, and 300 residual convolutions (how the passes scale with depth). Each line says how quantize
ended (0: written, 2: a one-line refusal) and the held-out fidelity verify reads; any other ending is a bug. Fidelity on random weights says the run worked, not how good
the tool is: the benchmark zoo (tools/bench/zoo.py) measures that. Needs numpy, onnx and onnxruntime.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


class G:
    """A graph under construction: initializers and named nodes."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.inits, self.nodes = [], []

    def w(self, name, *shape, scale=None, dtype=np.float32, value=None):
        arr = np.asarray(value) if value is not None else self.rng.standard_normal(shape) * (
            scale if scale is not None else 1 / np.sqrt(max(1, np.prod(shape[:-1]) if len(shape) > 1 else 1)))
        self.inits.append(nh.from_array(arr.astype(dtype), name))
        return name

    def n(self, op, ins, outs, name=True, **kw):
        self.nodes.append(h.make_node(op, ins, outs, name=f"{op}_{len(self.nodes)}" if name else "", **kw))
        return outs[0]

    def model(self, inputs, outputs, opset, ir=8, functions=(), extra_opsets=()):
        g = h.make_graph(self.nodes, "probe", inputs, outputs, self.inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)] + list(extra_opsets), functions=list(functions))
        m.ir_version = ir
        return m


def vi(name, dims, t=T.FLOAT):
    return h.make_tensor_value_info(name, t, dims)


def dtln():
    g, F, H = G(1), 257, 128
    x = g.n("MatMul", ["mag", g.w("Wi", F, F)], ["x0"])
    y1 = g.n("LSTM", [x, g.w("W1", 1, 4 * H, F), g.w("R1", 1, 4 * H, H), g.w("B1", 1, 8 * H, scale=0.1), "", "h1", "c1"],
             ["y1", "h1_out", "c1_out"], hidden_size=H)
    y1 = g.n("Squeeze", [y1, g.w("ax1", value=[1], dtype=np.int64)], ["y1s"])
    y2 = g.n("LSTM", [y1, g.w("W2", 1, 4 * H, H), g.w("R2", 1, 4 * H, H), g.w("B2", 1, 8 * H, scale=0.1), "", "h2", "c2"],
             ["y2", "h2_out", "c2_out"], hidden_size=H)
    y2 = g.n("Squeeze", [y2, "ax1"], ["y2s"])
    d = g.n("Add", [g.n("MatMul", [y2, g.w("Wd", H, F)], ["d"]), g.w("bd", F, scale=0.1)], ["d2"])
    g.n("Sigmoid", [d], ["mask"])
    states = ["h1", "c1", "h2", "c2"]
    m = g.model([vi("mag", [1, 1, F])] + [vi(s, [1, 1, H]) for s in states],
                [vi("mask", [1, 1, F])] + [vi(s + "_out", [1, 1, H]) for s in states], 17)
    return m, lambda r: {"mag": np.abs(r.standard_normal((1, 1, F))), **{s: r.standard_normal((1, 1, H)) * 0.3 for s in states}}


def kws():
    g, C, U = G(2), 64, 64
    x = g.n("Transpose", ["feat"], ["ft"], perm=[0, 2, 1])
    x = g.n("Relu", [g.n("Conv", [x, g.w("Wc", C, 40, 3), g.w("bc", C, scale=0.1)], ["c1"], pads=[1, 1], kernel_shape=[3])], ["r1"])
    x = g.n("Transpose", [x], ["seq"], perm=[2, 0, 1])
    g.n("GRU", [x, g.w("Wg", 2, 3 * U, C), g.w("Rg", 2, 3 * U, U), g.w("Bg", 2, 6 * U, scale=0.1)], ["gy", "gh"],
        hidden_size=U, direction="bidirectional", linear_before_reset=1)
    x = g.n("Reshape", [g.n("Transpose", ["gh"], ["ght"], perm=[1, 0, 2]), g.w("shp", value=[1, 2 * U], dtype=np.int64)], ["flat"])
    g.n("Softmax", [g.n("Gemm", [x, g.w("Wo", 2 * U, 12), g.w("bo", 12, scale=0.0)], ["logits"])], ["prob"], axis=1)
    return g.model([vi("feat", [1, 49, 40])], [vi("prob", [1, 12])], 17), lambda r: {"feat": r.standard_normal((1, 49, 40))}


def crnn(unnamed=False, ir=8):
    g, K, H = G(3), 40, 96
    x = g.n("Relu", [g.n("Conv", ["img", g.w("Wa", 32, 1, 3, 3, scale=0.3), g.w("ba", 32, scale=0)], ["a1"], name=not unnamed,
                         pads=[1, 1, 1, 1])], ["a2"], name=not unnamed)
    x = g.n("MaxPool", [x], ["a3"], name=not unnamed, kernel_shape=[2, 2], strides=[2, 2])
    x = g.n("Relu", [g.n("Conv", [x, g.w("Wb", 64, 32, 3, 3), g.w("bb", 64, scale=0)], ["b1"], name=not unnamed,
                         pads=[1, 1, 1, 1])], ["b2"], name=not unnamed)
    x = g.n("MaxPool", [x], ["b3"], name=not unnamed, kernel_shape=[2, 2], strides=[2, 2])
    x = g.n("Reshape", [g.n("Transpose", [x], ["t"], name=not unnamed, perm=[3, 0, 1, 2]),
                        g.w("shp", value=[0, 1, 512], dtype=np.int64)], ["seq"], name=not unnamed)
    g.n("LSTM", [x, g.w("Wl", 2, 4 * H, 512), g.w("Rl", 2, 4 * H, H), g.w("Bl", 2, 8 * H, scale=0.1)], ["ly"],
        name=not unnamed, hidden_size=H, direction="bidirectional")
    x = g.n("Reshape", [g.n("Transpose", ["ly"], ["lt"], name=not unnamed, perm=[0, 2, 1, 3]),
                        g.w("shp2", value=[0, 1, 2 * H], dtype=np.int64)], ["lf"], name=not unnamed)
    x = g.n("Add", [g.n("MatMul", [x, g.w("Wp", 2 * H, K)], ["p"], name=not unnamed), g.w("bp", K, scale=0)], ["p2"],
            name=not unnamed)
    g.n("Softmax", [x], ["out"], name=not unnamed, axis=-1)
    m = g.model([vi("img", [1, 1, 32, "W"])], [vi("out", ["T", 1, K])], 17, ir=ir)
    return m, lambda r: {"img": r.random((1, 1, 32, int(r.integers(8, 40)) * 4))}


def encoder(D=128, Hh=4, F=512, V=1000, layers=2, opset=20):
    g = G(4)
    x = g.n("Gather", [g.w("emb", V, D, scale=0.1), "ids"], ["x0"])
    seq = g.n("Unsqueeze", [g.n("Gather", [g.n("Shape", ["ids"], ["sh"]), g.w("one", value=1, dtype=np.int64)], ["seq"], axis=0),
                            g.w("ax0", value=[0], dtype=np.int64)], ["seq1"])
    p = g.n("Slice", [g.w("pos", 512, D, scale=0.02), g.w("zero1", value=[0], dtype=np.int64), seq, "ax0"], ["p"])
    x = g.n("LayerNormalization", [g.n("Add", [x, p], ["x1"]), g.w("g0", value=np.ones(D)), g.w("b0", value=np.zeros(D))],
            ["x2"], axis=-1)
    m = g.n("Unsqueeze", [g.n("Cast", ["mask"], ["mf"], to=1), g.w("ax12", value=[1, 2], dtype=np.int64)], ["m4"])
    m = g.n("Mul", [g.n("Sub", [g.w("onef", value=1.0), m], ["mi"]), g.w("neg", value=-1e4)], ["madd"])
    hd = D // Hh
    for l in range(layers):
        qkv = g.n("Add", [g.n("MatMul", [x, g.w(f"wqkv{l}", D, 3 * D)], [f"qkv{l}"]), g.w(f"bqkv{l}", 3 * D, scale=0)], [f"qkvb{l}"])
        q, k, v = f"q{l}", f"k{l}", f"v{l}"
        g.n("Split", [qkv, g.w(f"spl{l}", value=[D, D, D], dtype=np.int64)], [q, k, v], axis=-1)
        heads = [g.n("Transpose", [g.n("Reshape", [t, g.w(f"shp_{t}", value=[0, 0, Hh, hd], dtype=np.int64)], [t + "r"])],
                     [t + "t"], perm=[0, 2, 1, 3]) for t in (q, k, v)]
        s = g.n("MatMul", [heads[0], g.n("Transpose", [heads[1]], [f"kt{l}"], perm=[0, 1, 3, 2])], [f"s{l}"])
        s = g.n("Add", [g.n("Div", [s, g.w(f"sc{l}", value=np.sqrt(hd))], [f"sd{l}"]), "madd"], [f"sm{l}"])
        c = g.n("MatMul", [g.n("Softmax", [s], [f"a{l}"], axis=-1), heads[2]], [f"c{l}"])
        c = g.n("Reshape", [g.n("Transpose", [c], [f"ct{l}"], perm=[0, 2, 1, 3]), g.w(f"shpc{l}", value=[0, 0, D], dtype=np.int64)],
                [f"cr{l}"])
        o = g.n("Add", [g.n("MatMul", [c, g.w(f"wo{l}", D, D)], [f"o{l}"]), g.w(f"bo{l}", D, scale=0)], [f"ob{l}"])
        x = g.n("LayerNormalization", [g.n("Add", [x, o], [f"res{l}"]), g.w(f"g1{l}", value=np.ones(D)),
                                       g.w(f"b1{l}", value=np.zeros(D))], [f"ln1{l}"], axis=-1)
        f = g.n("Gelu", [g.n("Add", [g.n("MatMul", [x, g.w(f"w1{l}", D, F)], [f"f{l}"]), g.w(f"bf1{l}", F, scale=0)], [f"fb{l}"])],
                [f"fg{l}"], approximate="tanh")
        f = g.n("Add", [g.n("MatMul", [f, g.w(f"w2{l}", F, D)], [f"f2{l}"]), g.w(f"bf2{l}", D, scale=0)], [f"f2b{l}"])
        x = g.n("LayerNormalization", [g.n("Add", [x, f], [f"res2{l}"]), g.w(f"g2{l}", value=np.ones(D)),
                                       g.w(f"b2{l}", value=np.zeros(D))], [f"ln2{l}"], axis=-1)
    g.n("Identity", [x], ["last_hidden_state"])
    mdl = g.model([vi("ids", [1, "S"], T.INT64), vi("mask", [1, "S"], T.INT64)], [vi("last_hidden_state", [1, "S", D])], opset, ir=9)

    def sample(r):
        s = int(r.integers(5, 60))
        return {"ids": r.integers(0, V, (1, s)).astype(np.int64), "mask": np.ones((1, s), np.int64)}
    return mdl, sample


def audio():
    g = G(5)
    st = g.n("STFT", [g.n("Unsqueeze", ["wav", g.w("axm1", value=[-1], dtype=np.int64)], ["w3"]), g.w("step", value=160, dtype=np.int64),
                      g.w("win", value=np.hanning(400)), g.w("flen", value=400, dtype=np.int64)], ["st"], onesided=1)
    pw = g.n("ReduceSumSquare", [st, g.w("axl", value=[-1], dtype=np.int64)], ["pw"], keepdims=0)
    mel = g.n("MelWeightMatrix", [g.w("nmel", value=64, dtype=np.int64), g.w("dft", value=400, dtype=np.int64),
                                  g.w("sr", value=16000, dtype=np.int64), g.w("lo", value=0.0), g.w("hi", value=8000.0)], ["melw"])
    x = g.n("Log", [g.n("Add", [g.n("MatMul", [pw, mel], ["mel"]), g.w("eps", value=1e-6)], ["mel_e"])], ["logmel"])
    x = g.n("Unsqueeze", [x, g.w("ax1", value=[1], dtype=np.int64)], ["x4"])
    x = g.n("HardSwish", [g.n("Conv", [x, g.w("c1w", 16, 1, 3, 3, scale=0.3), g.w("c1b", 16, scale=0)], ["c1"], pads=[1, 1, 1, 1],
                              strides=[2, 2])], ["h1"])
    x = g.n("Relu", [g.n("Conv", [x, g.w("dw", 16, 1, 3, 3, scale=0.3), g.w("dwb", 16, scale=0)], ["dwo"], pads=[1, 1, 1, 1],
                         group=16)], ["r2"])
    se = g.n("Relu", [g.n("Conv", [g.n("GlobalAveragePool", [x], ["gap"]), g.w("se1", 4, 16, 1, 1, scale=0.25),
                                   g.w("se1b", 4, scale=0)], ["se1o"])], ["se1r"])
    se = g.n("HardSigmoid", [g.n("Conv", [se, g.w("se2", 16, 4, 1, 1, scale=0.5), g.w("se2b", 16, scale=0)], ["se2o"])], ["seg"])
    x = g.n("Conv", [g.n("Mul", [x, se], ["sex"]), g.w("pw1", 32, 16, 1, 1, scale=0.25), g.w("pw1b", 32, scale=0)], ["pwo"])
    x = g.n("Resize", [x, "", g.w("scales", value=[1, 1, 0.5, 0.5])], ["rs"], mode="linear")
    x = g.n("Flatten", [g.n("GlobalAveragePool", [x], ["g2"])], ["fl"])
    g.n("Gemm", [x, g.w("fcw", 10, 32, scale=0.15), g.w("fcb", 10, scale=0)], ["logits"], transB=1)
    t = np.arange(16000) / 16000
    return g.model([vi("wav", [1, 16000])], [vi("logits", [1, 10])], 18), \
        lambda r: {"wav": (0.3 * np.sin(2 * np.pi * r.uniform(100, 3000) * t) + 0.05 * r.standard_normal(16000))[None]}


def forms():
    g = G(6)
    x = g.n("Relu", [g.n("MatMul", [g.w("Wl", 96, 64, scale=0.12), "x"], ["m1"])], ["r1"])   # W·x: stays float, said so
    x = g.n("Conv", [x, g.w("c1", 96, 1, 5, scale=0.5), g.w("c1b", 96, scale=0)], ["dw"], group=96, pads=[4, 4], dilations=[2])
    x = g.n("Tanh", [g.n("InstanceNormalization", [g.n("Conv", [x, g.w("c2", 48, 96, 1, scale=0.1)], ["pw"]),
                                                    g.w("in_s", value=np.ones(48)), g.w("in_b", value=np.zeros(48))], ["inn"])], ["g"])
    x = g.n("ConvTranspose", [x, g.w("ct", 48, 32, 4, scale=0.12), g.w("ctb", 32, scale=0)], ["up"], strides=[2], pads=[1, 1])
    x = g.n("ReduceMean", [x, g.w("axT", value=[2], dtype=np.int64)], ["mean"], keepdims=0)
    g.n("Transpose", [g.n("Gemm", [g.w("Wt", 32, 10, scale=0.15), x], ["gt"], transA=1, transB=1)], ["logits"], perm=[1, 0])
    g.n("MatMul", [g.n("Relu", [g.n("MatMul", ["mean", g.w("Ws", 32, 32, scale=0.15)], ["s1"])], ["s1r"]), "Ws"], ["emb"])
    return g.model([vi("x", [1, 64, "T"])], [vi("logits", [1, 10]), vi("emb", [1, 32])], 18), \
        lambda r: {"x": r.standard_normal((1, 64, int(r.integers(50, 200))))}


def indices():
    g = G(7)
    x = g.n("Relu", [g.n("Conv", ["img", g.w("w1", 32, 3, 3, 3, scale=0.2), g.w("b1", 32, scale=0)], ["c1"], pads=[1, 1, 1, 1])], ["feat"])
    x = g.n("Conv", [x, g.w("w2", 16, 32, 3, 3, scale=0.1), g.w("b2", 16, scale=0)], ["c2"], pads=[1, 1, 1, 1])
    x = g.n("Transpose", [g.n("ReduceMean", [x, g.w("ax", value=[2], dtype=np.int64)], ["rm"], keepdims=0)], ["tr"], perm=[0, 2, 1])
    p = g.n("Softmax", [g.n("MatMul", [x, g.w("wp", 16, 20, scale=0.25)], ["lg"])], ["probs"], axis=-1)
    g.n("ArgMax", [p], ["ids"], axis=-1, keepdims=0)
    g.n("Greater", [g.n("ReduceMax", [p, g.w("ax2", value=[-1], dtype=np.int64)], ["conf"], keepdims=0), g.w("th", value=0.5)], ["ok"])
    return g.model([vi("img", [1, 3, 16, "W"])], [vi("ids", [1, "W"], T.INT64), vi("ok", [1, "W"], T.BOOL)], 18), \
        lambda r: {"img": r.random((1, 3, 16, int(r.integers(8, 30)) * 4))}


def functions():
    r, D = np.random.default_rng(8), 64
    lin = h.make_function("pkg.mods", "Linear", ["x", "W", "b"], ["y"],
                          [h.make_node("MatMul", ["x", "W"], ["t"]), h.make_node("Add", ["t", "b"], ["y"])], [h.make_opsetid("", 18)])
    blk = h.make_function("pkg.mods", "Block", ["x", "W1", "b1", "W2", "b2"], ["y"], [
        h.make_node("Linear", ["x", "W1", "b1"], ["h"], domain="pkg.mods"), h.make_node("Relu", ["h"], ["r"]),
        h.make_node("Linear", ["r", "W2", "b2"], ["o"], domain="pkg.mods"), h.make_node("Add", ["x", "o"], ["y"])],
        [h.make_opsetid("", 18), h.make_opsetid("pkg.mods", 1)])
    inits, nodes, x = [], [], "x"
    for l in range(3):
        ws = [nh.from_array((r.standard_normal(s) * sc).astype(np.float32), f"{n}_{l}")
              for n, s, sc in (("W1", (D, 4 * D), 1 / 8), ("b1", (4 * D,), 0), ("W2", (4 * D, D), 1 / 16), ("b2", (D,), 0))]
        inits += ws
        nodes.append(h.make_node("Block", [x] + [w.name for w in ws], [f"y{l}"], domain="pkg.mods", name=f"/block{l}/Block"))
        x = f"y{l}"
    nodes.append(h.make_node("Identity", [x], ["out"], name="/out"))
    g = h.make_graph(nodes, "fn", [vi("x", [1, "S", D])], [vi("out", [1, "S", D])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18), h.make_opsetid("pkg.mods", 1)], functions=[lin, blk])
    m.ir_version = 9
    return m, lambda rr: {"x": rr.standard_normal((1, int(rr.integers(4, 30)), D))}


def deep(layers=300):
    g, C = G(10), 32
    x = "x"
    for l in range(layers):
        r = g.n("Relu", [g.n("Conv", [x, g.w(f"w{l}", C, C, 3, 3, scale=1 / np.sqrt(9 * C)), g.w(f"b{l}", C, scale=0)], [f"c{l}"],
                               pads=[1, 1, 1, 1])], [f"r{l}"])
        x = g.n("Add", [r, f"r{l - 1}"], [f"a{l}"]) if l % 2 else r
    return g.model([vi("x", [1, C, 16, 16])], [vi(x, [1, C, 16, 16])], 17), lambda r: {"x": r.standard_normal((1, C, 16, 16))}


# With --large: models of a size the zoo has none of (how time and memory scale with the weights).
LARGE = {"encoder-bert-base-size": lambda: encoder(D=768, Hh=12, F=3072, V=30522, layers=12, opset=20)}

PROBES = {
    "dtln-lstm": dtln, "kws-gru": kws, "crnn-bilstm": crnn, "crnn-unnamed-ir14": lambda: crnn(unnamed=True, ir=14),
    "encoder-opset20": encoder, "audio-stft": audio, "odd-forms": forms, "index-outputs": indices,
    "local-functions": functions, "deep-300-convs": deep,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jar", default=os.path.join(os.path.dirname(__file__), "..", "..", "target", "qwt-onnx.jar"))
    p.add_argument("--out", default="/tmp/qwt-probes")
    p.add_argument("--large", action="store_true", help="also a BERT-base-sized encoder (436 MB)")
    a = p.parse_args()
    bad = 0
    for name, make in list(PROBES.items()) + (list(LARGE.items()) if a.large else []):
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        model, sample = make()
        path = os.path.join(d, "model.onnx")
        onnx.save(model, path)
        rng = np.random.default_rng(11)
        for split, n in (("calib", 24), ("held", 8)):
            os.makedirs(os.path.join(d, split), exist_ok=True)
            for i in range(n):
                arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in sample(rng).items()}
                np.savez(os.path.join(d, split, "%03d.npz" % i), **arrays)
        out = os.path.join(d, "int8.onnx")
        q = subprocess.run(["java", "-jar", a.jar, path, out, "--calib", os.path.join(d, "calib"), "--keep-slow-int8",
                            "--no-report"], capture_output=True, text=True)
        line = "%-18s quantize %d" % (name, q.returncode)
        if q.returncode == 0:
            v = subprocess.run(["java", "-jar", a.jar, "verify", path, out, "--data", os.path.join(d, "held"), "--runs", "0"],
                               capture_output=True, text=True)
            first = [l for l in v.stdout.splitlines() if l.startswith("output")][:1]
            kernels = [l for l in q.stdout.splitlines() if l.startswith("ORT integer kernels")][:1]
            line += ", verify %d: %s; %s" % (v.returncode, (first or ["?"])[0], (kernels or ["?"])[0])
            bad += v.returncode != 0
        else:
            err = (q.stderr.strip().splitlines() or ["?"])
            line += ": " + err[-1]
            bad += q.returncode != 2 or len(err) != 1
        print(line, flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
