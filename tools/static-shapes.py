#!/usr/bin/env python3
"""A zoo text model with its sequence dimension fixed, and its samples padded to it, for the targets
that want static shapes (qnn, nnapi: tools/targets.sh reports MiniLM's dynamic inputs there).

    python3 tools/static-shapes.py [--length 128] .cache/zoo/minilm OUT_DIR

Writes OUT_DIR/model.onnx (every input's batch dimension 1, the other symbolic dimensions LENGTH,
with ORT's own onnx_model_utils) and OUT_DIR/{calib,held}/*.npz, each array padded with zeros on its
last axis to LENGTH (token id 0, attention mask 0: the padding BERT-family models read as such).
Tools only: not part of the build or the tests.
"""
import argparse, glob, os
import numpy as np
import onnx
from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

ap = argparse.ArgumentParser()
ap.add_argument("--length", type=int, default=128)
ap.add_argument("zoo")
ap.add_argument("out")
a = ap.parse_args()
m = onnx.load(os.path.join(a.zoo, "model.onnx"))
params = {d.dim_param for v in list(m.graph.input) + list(m.graph.output)
          for d in v.type.tensor_type.shape.dim if d.dim_param}
for p in sorted(params):
    make_dim_param_fixed(m.graph, p, 1 if "batch" in p else a.length)
fix_output_shapes(m)
os.makedirs(a.out, exist_ok=True)
onnx.save(m, os.path.join(a.out, "model.onnx"))
for split in ("calib", "held"):
    os.makedirs(os.path.join(a.out, split), exist_ok=True)
    for f in sorted(glob.glob(os.path.join(a.zoo, split, "*.npz"))):
        d = dict(np.load(f))
        pad = {k: np.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, a.length - v.shape[-1])]) for k, v in d.items()}
        np.savez(os.path.join(a.out, split, os.path.basename(f)), **pad)
print(f"{a.out}/model.onnx: {sorted(params)} fixed; samples padded to {a.length}")
