#!/usr/bin/env python3
"""Where an ONNX model's inference time goes on ORT CPU at one intra-op thread, by operator type.

    python3 tools/bench/op_profile.py [--rounds 3] [--samples 16] DATA_DIR MODEL.onnx [...]

DATA_DIR holds .npz samples named by input (tools/bench/zoo.py's held/). ORT's own profiler records
each node's kernel time over the rounds; printed per model: the kernel time per sample and the
operator types that take most of it (ms per sample). Tools only (issue 18): not part of the build
or the tests.
"""
import argparse, collections, glob, json, os, tempfile
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--samples", type=int, default=16)
ap.add_argument("data")
ap.add_argument("models", nargs="+")
a = ap.parse_args()
files = sorted(glob.glob(os.path.join(a.data, "*.npz")))[: a.samples]
tmp = tempfile.mkdtemp(prefix="qwt-prof-")
for m in a.models:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, os.path.basename(m))
    s = ort.InferenceSession(m, so, providers=["CPUExecutionProvider"])
    names = {i.name for i in s.get_inputs()}
    for _ in range(a.rounds):
        for f in files:
            d = np.load(f)
            s.run(None, {k: d[k] for k in d.files if k in names})
    per_op = collections.Counter()
    with open(s.end_profiling()) as fp:
        for e in json.load(fp):
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                per_op[e["args"]["op_name"]] += e["dur"]
    n = a.rounds * len(files)
    print(f"{m}: {sum(per_op.values()) / n / 1000:.2f} ms/sample in kernels")
    print("  " + ", ".join(f"{k} {v / n / 1000:.2f}" for k, v in per_op.most_common(12)))
