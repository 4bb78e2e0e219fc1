#!/usr/bin/env python3
"""A BERT-family encoder as ORT's own tools make it fastest in dynamic int8: the transformer optimizer
fuses attention (Attention), residual + LayerNorm (SkipLayerNormalization), bias + Gelu and the
embeddings, then quantize_dynamic makes QAttention, MatMulInteger and QEmbedLayerNormalization.

    python3 tools/bench/ort_fused_dynamic.py MODEL.onnx FUSED.onnx FUSED-INT8.onnx [--heads 12 --hidden 384]

Prints the operator counts of both. Time them with tools/bench/latency.py. Tools only (issue 18's
question whether fused attention pays at one thread): not part of the build or the tests.
"""
import argparse, collections
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers import optimizer

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("fused")
ap.add_argument("fused_int8")
ap.add_argument("--heads", type=int, default=12)
ap.add_argument("--hidden", type=int, default=384)
a = ap.parse_args()
m = optimizer.optimize_model(a.model, model_type="bert", num_heads=a.heads, hidden_size=a.hidden, opt_level=0)
m.save_model_to_file(a.fused)
quantize_dynamic(a.fused, a.fused_int8, weight_type=QuantType.QInt8,
                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
for p in (a.fused, a.fused_int8):
    print(p, collections.Counter(n.op_type for n in onnx.load(p).graph.node).most_common())
