#!/usr/bin/env python3
"""Makes testdata/ort/: small models quantized by ONNX Runtime's own Python quantize_static, so that
OrtQuantizedCompensateTest checks `compensate` on another tool's models in CI, with no Python there.

    python3 -m venv /tmp/ortvenv && /tmp/ortvenv/bin/pip install onnx==1.23.1 onnxruntime==1.30.0 numpy
    bash tools/fetch-models.sh            # the PP-OCRv4 detector, into .cache/models
    /tmp/ortvenv/bin/python tools/make-ort-testdata.py

The committed files were made with exactly that command (onnxruntime 1.30.0, onnx 1.23.1, numpy 2.4.6).
For each model, both of ORT's formats: <name>-ort-qdq.onnx (QuantFormat.QDQ) and <name>-ort-qop.onnx
(QuantFormat.QOperator: QLinearConv / QLinearMatMul), per-channel int8 weights, uint8 activations, as
tools/ort_quantize.py quantizes (it holds the shared code):

- cnn: testdata/example/cnn.onnx (Conv, Gemm), calibrated on testdata/example/calib/test_data_set_00..09;
  the test holds samples 10..19 out.
- ppocr-det: the PP-OCRv4 text detector (Conv only), calibrated on ort_quantize.py's synthetic pages;
  the test compensates and measures with its own rendered pages and photos.

MiniLM is not here: ORT's int8 MiniLM is about 58 MB (its embedding table stays float). tools/ort_quantize.py makes it into .cache/ort-qdq,
where the test's MiniLM cases look for it (and skip, visibly, without it).
"""
import glob
import os
import shutil
import sys
import tempfile

import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ort_quantize  # noqa: E402  (the shared quantize_static call and the detector's calibration pages)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALIBRATION_SETS = 10


def cnn_feeds():
    sets = sorted(glob.glob(os.path.join(ROOT, "testdata", "example", "calib", "test_data_set_*")))
    feeds = []
    for s in sets[:CALIBRATION_SETS]:
        t = onnx.TensorProto()
        with open(os.path.join(s, "input_0.pb"), "rb") as f:
            t.ParseFromString(f.read())
        feeds.append({"x": numpy_helper.to_array(t)})
    return feeds


def main():
    out = os.path.join(ROOT, "testdata", "ort")
    os.makedirs(out, exist_ok=True)
    ppocr = os.path.join(ROOT, ".cache", "models", "ch_PP-OCRv4_det_infer.onnx")
    if not os.path.exists(ppocr):
        sys.exit(f"{ppocr} not found: run bash tools/fetch-models.sh")
    jobs = [("cnn", os.path.join(ROOT, "testdata", "example", "cnn.onnx"), cnn_feeds, ["Conv", "Gemm", "MatMul"]),
            ("ppocr-det", ppocr, ort_quantize.ppocr_feeds, ["Conv"])]
    for name, model, feeds, op_types in jobs:
        for fmt, suffix in (("qdq", "qdq"), ("qoperator", "qop")):
            # ort_quantize.quantize also writes its pre-processed float models; only the quantized one is kept.
            with tempfile.TemporaryDirectory() as work:
                ort_quantize.quantize(name, model, feeds(), work, op_types, fmt)
                shutil.move(os.path.join(work, f"{name}-ort-{suffix}.onnx"), os.path.join(out, f"{name}-ort-{suffix}.onnx"))


if __name__ == "__main__":
    main()
