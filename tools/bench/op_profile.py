#!/usr/bin/env python3
"""Where an ONNX model's inference time goes on ORT CPU at one intra-op thread, by operator type.

    python3 tools/bench/op_profile.py [--rounds 3] [--samples 16] DATA_DIR MODEL.onnx [...]

DATA_DIR holds .npz samples named by input (tools/bench/zoo.py's held/). ORT's own profiler records
each node's kernel time over the rounds; printed per model: the kernel time per sample and the
operator types that take most of it (ms per sample). Tools only (issue 18): not part of the build
or the tests.
"""
import collections, json, os, tempfile
from one_thread import arguments, feeds, session

a, files = arguments(rounds=3, count=16)
tmp = tempfile.mkdtemp(prefix="qwt-prof-")
for m in a.models:
    s = session(m, os.path.join(tmp, os.path.basename(m)))
    fed = feeds(s, files)
    for _ in range(a.rounds):
        for f in fed:
            s.run(None, f)
    per_op = collections.Counter()
    with open(s.end_profiling()) as fp:
        for e in json.load(fp):
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                per_op[e["args"]["op_name"]] += e["dur"]
    n = a.rounds * len(files)
    print(f"{m}: {sum(per_op.values()) / n / 1000:.2f} ms/sample in kernels")
    print("  " + ", ".join(f"{k} {v / n / 1000:.2f}" for k, v in per_op.most_common(12)))
