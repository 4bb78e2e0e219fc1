# Regenerates the NumPy-written fixtures read by NpyTest, NpzTest and CalibrationSourcesTest (run from this folder).
# Written with NumPy 2.4; the files are tiny and checked in so the tests need no Python.
import numpy as np
from numpy.lib import format as F

base = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5      # [[-2.5 -1.5 -0.5] [0.5 1.5 2.5]]
np.save("npy/f4.npy", base)
for dt in ["<f8", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1", "<f2", "<u2"]:
    np.save("npy/" + dt.replace("<", "le_").replace("|", "na_") + ".npy", (np.arange(6) % 3).astype(dt).reshape(3, 2))
np.save("npy/fortran.npy", np.asfortranarray(base))               # fortran_order: True
np.save("npy/transposed.npy", base.T)                              # what np.save(x.T) writes: also Fortran order
np.save("npy/big_endian.npy", base.astype(">f4"))
np.save("npy/scalar.npy", np.float32(3.5))
np.save("npy/structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
np.save("npy/unicode.npy", np.array(["ab", "c"]))
with open("npy/v2.npy", "wb") as f:
    F.write_array(f, base, version=(2, 0))
with open("npy/v3.npy", "wb") as f:
    F.write_array(f, base, version=(3, 0))
ids = np.arange(4, dtype=np.int64).reshape(1, 4)
np.savez("npz/stored.npz", x=base, ids=ids)
np.savez_compressed("npz/deflated.npz", x=base, ids=ids)
np.savez("npz/positional.npz", base)                               # arrays named arr_0, ...

# An ONNX test-data set as onnx writes it: one tensor named (raw_data), one unnamed (int64_data).
import os
import onnx
from onnx import numpy_helper, helper, TensorProto
os.makedirs("tds/test_data_set_0", exist_ok=True)
with open("tds/test_data_set_0/input_1.pb", "wb") as f:
    f.write(numpy_helper.from_array(np.array([[1, 1, 0]], dtype=np.int64), "attention_mask").SerializeToString())
with open("tds/test_data_set_0/input_0.pb", "wb") as f:
    f.write(helper.make_tensor("", TensorProto.INT64, [1, 3], [101, 7592, 102]).SerializeToString())
with open("tds/test_data_set_0/output_0.pb", "wb") as f:
    f.write(numpy_helper.from_array(np.zeros((1, 2), dtype=np.float32), "logits").SerializeToString())
