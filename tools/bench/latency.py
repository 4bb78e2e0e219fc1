#!/usr/bin/env python3
"""Inference latency of ONNX models on ORT CPU at one intra-op thread over a zoo model's held-out samples.

    python3 tools/bench/latency.py [--rounds 5] [--samples 8] DATA_DIR FLOAT.onnx OTHER.onnx [...]

DATA_DIR holds .npz samples named by input (tools/bench/zoo.py's held/). Each round runs every model
once over the samples, models interleaved sample by sample, and records the CPU time of the calling
thread (time.thread_time: one intra-op thread, so wall time on a shared machine adds only noise).
Prints per model the median over rounds of the summed per-sample time and its ratio to the first model.
Tools only (issue 18's "never slower than float"): not part of the build or the tests.
"""
import os, statistics, time
from one_thread import arguments, feeds, session

a, files = arguments(rounds=5, count=8)
sessions = []
for m in a.models:
    s = session(m)
    sessions.append((s, feeds(s, files)))
for s, fed in sessions:
    for f in fed[:2]:
        s.run(None, f)
totals = [[] for _ in sessions]
for _ in range(a.rounds):
    acc = [0.0] * len(sessions)
    for j in range(len(files)):
        for i, (s, fed) in enumerate(sessions):
            t0 = time.thread_time()
            s.run(None, fed[j])
            acc[i] += time.thread_time() - t0
    for i, t in enumerate(acc):
        totals[i].append(t * 1e3 / len(files))
base = statistics.median(totals[0])
for m, t in zip(a.models, totals):
    med = statistics.median(t)
    print(f"{os.path.basename(os.path.dirname(m))}/{os.path.basename(m)}: {med:.3f} ms/sample  {med / base:.3f}x")
