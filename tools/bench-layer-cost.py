#!/usr/bin/env python3
"""Times single-kind layer chains in float and in QDQ int8 form on ORT CPU at one thread.

For each layer shape it builds three models and times each (median of interleaved runs):
  float  : x -> Conv/MatMul x K -> y             (float chain of K identical layers)
  int8   : x -> Q -> (DQ -> Conv -> Q) x K -> DQ -> y  (what the quantizer writes for a chain)
and reports the per-layer cost in a chain (difference between K=CHAIN and K=1, divided by CHAIN-1)
and the boundary cost of the int8 form (K=1 int8 minus one in-chain int8 layer): the Q at the
entry and DQ at the exit plus any layout transposes ORT adds around its integer kernels.

Usage: python3 tools/bench-layer-cost.py [--runs N] > numbers.tsv
Needs python3 with onnx, numpy and onnxruntime (tools only).
"""
import argparse, statistics, time, sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
import onnxruntime as ort

CHAIN = 4

def conv_chain(k, c, h, w, ksize, group, quant):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    if quant:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(128, np.uint8), "z"),
                  numpy_helper.from_array(np.array(0, np.int8), "wz")]
        nodes.append(helper.make_node("QuantizeLinear", [x, "s", "z"], ["q0"]))
        x = "q0"
    for i in range(k):
        wshape = (c, c // group, ksize, ksize)
        b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32) * 0.1, f"b{i}")
        if quant:
            wq = numpy_helper.from_array(rng.integers(-127, 128, wshape).astype(np.int8), f"wq{i}")
            ws = numpy_helper.from_array(np.full(c, 0.01, np.float32), f"ws{i}")
            wz = numpy_helper.from_array(np.zeros(c, np.int8), f"wzz{i}")
            bq = numpy_helper.from_array(rng.integers(-1000, 1000, c).astype(np.int32), f"bq{i}")
            bs = numpy_helper.from_array(np.full(c, 0.0005, np.float32), f"bs{i}")
            bz = numpy_helper.from_array(np.zeros(c, np.int32), f"bz{i}")
            inits += [wq, ws, wz, bq, bs, bz]
            nodes += [helper.make_node("DequantizeLinear", [x, "s", "z"], [f"xd{i}"]),
                      helper.make_node("DequantizeLinear", [f"wq{i}", f"ws{i}", f"wzz{i}"], [f"w{i}"], axis=0),
                      helper.make_node("DequantizeLinear", [f"bq{i}", f"bs{i}", f"bz{i}"], [f"b{i}"], axis=0),
                      helper.make_node("Conv", [f"xd{i}", f"w{i}", f"b{i}"], [f"c{i}"], group=group,
                                       pads=[ksize // 2] * 4),
                      helper.make_node("QuantizeLinear", [f"c{i}", "s", "z"], [f"q{i+1}"])]
            x = f"q{i+1}"
        else:
            inits += [numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32) * 0.1, f"w{i}"), b]
            nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], group=group, pads=[ksize // 2] * 4))
            x = f"c{i}"
    if quant:
        nodes.append(helper.make_node("DequantizeLinear", [x, "s", "z"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, h, w])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString(), {"x": rng.standard_normal((1, c, h, w)).astype(np.float32)}

def matmul_chain(k, m_, kk, quant):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    if quant:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(128, np.uint8), "z")]
        nodes.append(helper.make_node("QuantizeLinear", [x, "s", "z"], ["q0"]))
        x = "q0"
    for i in range(k):
        if quant:
            inits += [numpy_helper.from_array(rng.integers(-127, 128, (kk, kk)).astype(np.int8), f"wq{i}"),
                      numpy_helper.from_array(np.full(kk, 0.01, np.float32), f"ws{i}"),
                      numpy_helper.from_array(np.zeros(kk, np.int8), f"wz{i}")]
            nodes += [helper.make_node("DequantizeLinear", [x, "s", "z"], [f"xd{i}"]),
                      helper.make_node("DequantizeLinear", [f"wq{i}", f"ws{i}", f"wz{i}"], [f"w{i}"], axis=1),
                      helper.make_node("MatMul", [f"xd{i}", f"w{i}"], [f"c{i}"]),
                      helper.make_node("QuantizeLinear", [f"c{i}", "s", "z"], [f"q{i+1}"])]
            x = f"q{i+1}"
        else:
            inits.append(numpy_helper.from_array(rng.standard_normal((kk, kk)).astype(np.float32) * 0.1, f"w{i}"))
            nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"c{i}"]))
            x = f"c{i}"
    nodes.append(helper.make_node("DequantizeLinear", [x, "s", "z"], ["y"]) if quant else helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m_, kk])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m_, kk])], inits)
    mo = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    mo.ir_version = 8
    return mo.SerializeToString(), {"x": rng.standard_normal((m_, kk)).astype(np.float32)}

def session(b):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])

def time_interleaved(cases, runs):
    """cases: list of (session, feed); returns median microseconds per case, runs interleaved."""
    ts = [[] for _ in cases]
    for s, f in cases:
        for _ in range(20):
            s.run(None, f)
    for r in range(runs):
        for i, (s, f) in enumerate(cases):
            reps = 5
            t0 = time.perf_counter()
            for _ in range(reps):
                s.run(None, f)
            ts[i].append((time.perf_counter() - t0) / reps * 1e6)
    return [statistics.median(t) for t in ts]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=60)
    a = ap.parse_args()
    rows = []
    convs = []
    # (kind, channels, H, W, kernel, group)
    for c, hw in [(8, 48), (16, 24), (32, 24), (64, 12), (128, 6), (256, 3), (48, 24), (96, 12)]:
        convs.append(("depthwise3x3", c, hw, hw * 4 // 1 if hw <= 12 else hw * 4, 3, c))
        convs.append(("pointwise", c, hw, hw * 4 if hw <= 12 else hw * 4, 1, 1))
    for c, hw in [(8, 48), (16, 24), (32, 12), (64, 6)]:
        convs.append(("regular3x3", c, hw, hw * 4, 3, 1))
    print("kind\tC\tH\tW\tmacs\telems\tfloat_us\tint8_us\tint8_boundary_us", flush=True)
    for kind, c, h, w, ks, g in convs:
        cases = []
        for quant in (False, True):
            for k in (1, CHAIN):
                b, feed = conv_chain(k, c, h, w, ks, g, quant)
                cases.append((session(b), feed))
        f1, fk, q1, qk = time_interleaved(cases, a.runs)
        fl = (fk - f1) / (CHAIN - 1)
        ql = (qk - q1) / (CHAIN - 1)
        macs = c * (c // g) * ks * ks * h * w
        print(f"{kind}\t{c}\t{h}\t{w}\t{macs}\t{c*h*w}\t{fl:.2f}\t{ql:.2f}\t{q1 - ql:.2f}", flush=True)
    for m_, kk in [(1, 64), (1, 256), (16, 64), (128, 384), (8, 1024)]:
        cases = []
        for quant in (False, True):
            for k in (1, CHAIN):
                b, feed = matmul_chain(k, m_, kk, quant)
                cases.append((session(b), feed))
        f1, fk, q1, qk = time_interleaved(cases, a.runs)
        fl = (fk - f1) / (CHAIN - 1)
        ql = (qk - q1) / (CHAIN - 1)
        print(f"matmul\t{kk}\t{m_}\t{kk}\t{m_*kk*kk}\t{m_*kk}\t{fl:.2f}\t{ql:.2f}\t{q1 - ql:.2f}", flush=True)

if __name__ == "__main__":
    main()
