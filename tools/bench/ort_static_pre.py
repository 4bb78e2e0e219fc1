#!/usr/bin/env python3
"""ORT's quant_pre_process (ONNX shape inference, ORT graph optimization) and then tools/ort_quantize_static.py.

Usage: ort_static_pre.py MODEL OUT CALIB_DIR [minmax|percentile|entropy]
The `ort-pre` variant of tools/bench/run.py: ORT's own examples run this preparation before
quantize_static; the default `ort` variant does not. The preprocessed model goes to OUT.pre.onnx.
Prints the JSON line of ort_quantize_static.py, with the preparation's seconds added.
"""
import importlib.util
import json
import os
import sys
import time

from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    model, out = sys.argv[1:3]
    pre = out + ".pre.onnx"
    t0 = time.perf_counter()
    # ORT's symbolic shape inference stops on MiniLM and the PP-OCRv4 detector ("Incomplete
    # symbolic shape inference"); ONNX's shape inference and ORT's graph optimization still run
    quant_pre_process(model, pre, skip_symbolic_shape=True)
    seconds = time.perf_counter() - t0
    spec = importlib.util.spec_from_file_location("ort_quantize_static", os.path.join(ROOT, "tools", "ort_quantize_static.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.argv[1] = pre
    print(json.dumps({"pre_process_seconds": seconds}))
    mod.main()


if __name__ == "__main__":
    main()
