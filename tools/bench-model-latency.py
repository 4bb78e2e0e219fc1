#!/usr/bin/env python3
"""Median latency of ONNX models on ORT CPU at one intra-op thread, runs interleaved across models.

Usage: python3 tools/bench-model-latency.py --shape 1,3,48,192 [--runs 200] FLOAT.onnx INT8.onnx [MORE.onnx ...]
Prints each model's median and minimum and their ratios to the first model's (on a shared, loaded
machine the minimum is the steadier figure: the run that kept its core). The input is a fixed random tensor
(seed 0): latency of these models does not depend on the values. Needs python3 with numpy and
onnxruntime (tools only).
"""
import argparse, statistics, time
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--shape", required=True)
ap.add_argument("--runs", type=int, default=200)
ap.add_argument("models", nargs="+")
a = ap.parse_args()
shape = [int(s) for s in a.shape.split(",")]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
sessions = []
for m in a.models:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(m, so, providers=["CPUExecutionProvider"])
    sessions.append((s, {s.get_inputs()[0].name: x}))
for s, f in sessions:
    for _ in range(20):
        s.run(None, f)
ts = [[] for _ in sessions]
for _ in range(a.runs):
    for i, (s, f) in enumerate(sessions):
        t0 = time.perf_counter()
        s.run(None, f)
        ts[i].append((time.perf_counter() - t0) * 1e3)
base = statistics.median(ts[0])
base_min = min(ts[0])
for m, t in zip(a.models, ts):
    med = statistics.median(t)
    print(f"{m}\tmedian {med:.3f} ms\t{med / base:.2f}x\tmin {min(t):.3f} ms\t{min(t) / base_min:.2f}x")
