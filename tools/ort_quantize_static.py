#!/usr/bin/env python3
"""ONNX Runtime's own static quantization on the same model and data, timed, for comparison.

Usage: ort_quantize_static.py MODEL OUT CALIB_DIR [minmax|percentile|entropy]
CALIB_DIR holds .npz files, one sample each, arrays named by model input (as qwt-onnx reads them).
Settings mirror qwt-onnx's defaults: QDQ, uint8 activations, int8 symmetric per-channel weights,
MatMul/Conv/Gemm only. Prints one JSON line: {"seconds": ..., "samples": ..., "method": ...}.
Not part of the build or the tests; the Java bench calls it where python onnxruntime exists.
"""
import glob
import json
import os
import sys
import time

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)


class NpzReader(CalibrationDataReader):
    def __init__(self, folder):
        self.files = sorted(glob.glob(os.path.join(folder, "*.npz")))
        self.i = 0

    def get_next(self):
        if self.i >= len(self.files):
            return None
        with np.load(self.files[self.i]) as z:
            sample = {k: z[k] for k in z.files}
        self.i += 1
        return sample

    def rewind(self):
        self.i = 0


def main():
    model, out, folder = sys.argv[1:4]
    method = sys.argv[4] if len(sys.argv) > 4 else "minmax"
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    reader = NpzReader(folder)
    t0 = time.perf_counter()
    quantize_static(model, out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Conv", "Gemm"], calibrate_method=methods[method])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "samples": len(reader.files), "method": method}))


if __name__ == "__main__":
    main()
