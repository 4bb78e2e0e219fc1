#!/usr/bin/env python3
"""Measures four encodings of the same int8 model on ORT's CPU execution provider (issue 16).

The four forms (1 and 2 written by qwt-onnx, 3 and 4 re-encoded here from 1, same real values):
  u8s8   today's default: u8 asymmetric activations, s8 symmetric per-channel weights (|q| <= 127)
  rr     `quantize --reduce-range`: the same with 7-bit weights (|q| <= 63); new values, not a re-encoding
  s8s8   form 1 with every uint8 Q/DQ tensor re-encoded int8: zero point z -> z-128, data q -> q-128
  u8u8   form 1 with every int8 weight re-encoded uint8: q -> q+128, zero point 0 -> 128
and two more: rrg (rr with --rounding gptq) and hyb (rr with only the MatMul/Gemm weights re-encoded
u8u8: Conv weights on the 7-bit grid, MatMul/Gemm on u8*u8 kernels).
Each runs on this machine (AVX-512 VNNI), under `qemu-x86_64 -cpu Haswell` (AVX2 without VNNI, where
ORT's u8*s8 kernels add pairs of u8*s8 products in int16 with saturation) and, through the jar's
`verify`, under `qemu-aarch64 -cpu max` (see docs/cpu-forms.md). Fidelity is the int8 model's output
against the float model's on held-out samples: SQNR per sample (dB, mean and worst), cosine per sample
(mean and worst), and for the detector the IoU of the 0.3-thresholded probability maps. The float
outputs are computed once, natively (float differs between CPUs by ~1e-6), and stored as refs.npz.

Sub-commands (python3 needs onnx, onnxruntime, numpy; `data` also pillow and tokenizers):
  data DIR                 calibration and held-out inputs for the three models under DIR (one .npz
                           per sample, arrays named by model input, as the jar's --calib reads them)
  encode IN OUT FORM       FORM s8s8 or u8u8 (re-encodes form 1 as described above), or u8u8mm:
                           only the weights of MatMul/Gemm as u8u8 (applied to rr it gives the
                           hybrid "Conv u8*s7, MatMul u8*u8" form's kernels and speed)
  refs FLOAT DATA OUT.npz  float outputs of the held-out samples in DATA (.npy or .npz files)
  eval INT8 DATA REFS OUT.json [--det] [--limit N]
                           fidelity of INT8 against REFS, plus the op types of the graph ORT runs
                           (from SessionOptions.optimized_model_filepath); run it under qemu too
  latency MODEL... DATA OUT.json [--runs 50]
                           median ms of DATA's first sample per model, one thread, natively; the
                           models take turns run by run
  paired DIR               per-sample differences from u8s8 natively (mean +- standard error)
  table DIR                collects DIR/*.json into the markdown table of docs/cpu-forms.md

The whole measurement, as run for docs/cpu-forms.md, is tools/cpu-forms.sh.
"""
import glob
import json
import os
import random
import sys

import numpy as np

QUANT_OPS = ("QLinearConv", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QGemm",
             "DynamicQuantizeMatMul", "ConvInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid",
             "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearLeakyRelu",
             "QLinearSoftmax", "QAttention", "QuantizeLinear", "DequantizeLinear")


# ---------------------------------------------------------------- data
def fortune_lines(name, lo, hi):
    out = []
    with open(os.path.join("/usr/share/games/fortunes", name), encoding="utf-8", errors="replace") as f:
        for line in f:
            line = " ".join(line.split())
            if line and line != "%" and lo <= len(line) <= hi and line.isascii():
                out.append(line)
    return out


def render_line(text, rng):
    from PIL import Image, ImageDraw, ImageFont
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/DejaVu*.ttf")
                   + glob.glob("/usr/share/fonts/truetype/liberation/Liberation*.ttf"))
    fonts = [f for f in fonts if "Math" not in f]
    font = ImageFont.truetype(rng.choice(fonts), rng.randint(26, 36))
    while True:
        x0, y0, x1, y1 = font.getbbox(text)
        if x1 - x0 + 16 <= 640 or len(text) < 4:
            break
        text = text[:-1]
    w = min(640, max(160, ((x1 - x0 + 16 + 7) // 8) * 8))
    bg = rng.randint(200, 255)
    fg = rng.randint(0, 70)
    img = Image.new("L", (w, 48), bg)
    ImageDraw.Draw(img).text((8 - x0, (48 - (y1 - y0)) // 2 - y0), text, fill=fg, font=font)
    a = np.asarray(img, dtype=np.float32)
    a = a + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, 6, a.shape).astype(np.float32)
    a = np.clip(a, 0, 255)
    x = np.repeat(a[None, None], 3, axis=1)
    return ((x / 255.0 - 0.5) / 0.5).astype(np.float32)


def cmd_data(root):
    rng = random.Random(16)
    # recognizer: 64 calibration lines, 32 held-out lines, disjoint texts
    texts = fortune_lines("fortunes", 12, 60) + fortune_lines("cookie", 12, 60)
    rng.shuffle(texts)
    for sub, lines in (("rec-calib", texts[:64]), ("rec-held", texts[64:96])):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        for i, t in enumerate(lines):
            np.savez(os.path.join(root, sub, "%03d.npz" % i), x=render_line(t, rng))
    # MiniLM: calibration text as tools/compare-jars.sh makes it; held-out from another file
    calib = [l for l in fortune_lines("computers", 21, 199)][:80]
    with open(os.path.join(root, "minilm-calib.txt"), "w") as f:
        f.write("\n".join(calib) + "\n")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(root, "all-minilm-l6-v2-tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(128)
    held = [l for l in fortune_lines("science", 30, 199) if l not in calib][:32]
    os.makedirs(os.path.join(root, "minilm-held"), exist_ok=True)
    for i, s in enumerate(held):
        e = tok.encode(s)
        ids = np.array([e.ids], dtype=np.int64)
        np.savez(os.path.join(root, "minilm-held", "%03d.npz" % i), input_ids=ids,
                 attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids))
    # detector: held-out OpenCV sample images (not the 7 calibration ones), preprocessed as the jar
    # does with --image-size 320x320 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 (RGB, NCHW)
    from PIL import Image, ImageDraw, ImageFont
    fonts = [f for f in sorted(glob.glob("/usr/share/fonts/truetype/*/*Sans*.ttf")) if "Mono" not in f]
    os.makedirs(os.path.join(root, "det-held"), exist_ok=True)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    for n in ("messi5", "stuff", "text_defocus", "licenseplate_motion", "orange", "starry_night"):
        im = Image.open("/usr/share/doc/opencv-doc/examples/data/%s.jpg" % n).convert("RGB")
        s = max(320 / im.width, 320 / im.height)
        im = im.resize((max(320, round(im.width * s)), max(320, round(im.height * s))), Image.BILINEAR)
        l, t = (im.width - 320) // 2, (im.height - 320) // 2
        im = im.crop((l, t, l + 320, t + 320))
        # the photos hold almost no legible text (the float detector's map stays below 0.01), so
        # each gets three lines of fortune text drawn over it, light on dark or dark on light
        d = ImageDraw.Draw(im)
        for k in range(3):
            font = ImageFont.truetype(rng.choice(fonts), rng.randint(18, 30))
            y = 20 + k * 100 + rng.randint(0, 40)
            c = rng.choice([(rng.randint(0, 50),) * 3, (rng.randint(210, 255),) * 3])
            d.text((rng.randint(5, 60), y), rng.choice(texts[96:])[:24], fill=c, font=font)
        a = np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0
        np.savez(os.path.join(root, "det-held", n + ".npz"), x=((a - mean) / std)[None].astype(np.float32))


# ---------------------------------------------------------------- re-encoding
def cmd_encode(src, dst, form):
    import onnx
    from onnx import numpy_helper, TensorProto
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    users = {}
    for n in g.node:
        for k, i in enumerate(n.input):
            users.setdefault(i, []).append((n, k))
    changed = set()

    def retype(name, frm, to, delta):
        t = inits[name]
        if name in changed or t.data_type != frm:
            return
        for n, k in users.get(name, []):
            assert n.op_type in ("QuantizeLinear", "DequantizeLinear"), (name, n.op_type)
        a = numpy_helper.to_array(t).astype(np.int32) + delta
        t.CopyFrom(numpy_helper.from_array(a.astype(np.int8 if to == TensorProto.INT8 else np.uint8), name))
        changed.add(name)

    if form == "s8s8":
        qout = set()
        for n in g.node:
            if n.op_type == "QuantizeLinear" and len(n.input) > 2 and inits[n.input[2]].data_type == TensorProto.UINT8:
                retype(n.input[2], TensorProto.UINT8, TensorProto.INT8, -128)
                qout.add(n.output[0])
            if n.op_type == "DequantizeLinear" and len(n.input) > 2:
                if n.input[0] in inits:
                    retype(n.input[0], TensorProto.UINT8, TensorProto.INT8, -128)
                retype(n.input[2], TensorProto.UINT8, TensorProto.INT8, -128)
        for vi in list(g.value_info) + list(g.output):
            if vi.name in qout and vi.type.tensor_type.elem_type == TensorProto.UINT8:
                vi.type.tensor_type.elem_type = TensorProto.INT8
    elif form in ("u8u8", "u8u8mm"):
        for n in g.node:
            if form == "u8u8mm" and not all(u.op_type in ("MatMul", "Gemm") for u, _ in users.get(n.output[0], [])):
                continue
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT8:
                retype(n.input[0], TensorProto.INT8, TensorProto.UINT8, 128)
                if len(n.input) > 2 and n.input[2]:
                    retype(n.input[2], TensorProto.INT8, TensorProto.UINT8, 128)
                else:  # absent zero point means 0 in int8; uint8 needs an explicit 128
                    zp = numpy_helper.to_array(inits[n.input[1]])
                    name = n.input[0] + "_zp_u8"
                    g.initializer.append(numpy_helper.from_array(np.full(zp.shape, 128, np.uint8), name))
                    while len(n.input) < 3:
                        n.input.append("")
                    n.input[2] = name
    else:
        raise SystemExit("form: s8s8, u8u8 or u8u8mm")
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print("%s: %d tensors re-encoded" % (dst, len(changed)))


# ---------------------------------------------------------------- running
def samples(data, limit=0):
    files = sorted(glob.glob(os.path.join(data, "*.np[yz]")))
    if limit:
        files = files[:limit]
    out = []
    for f in files:
        if f.endswith(".npy"):
            out.append((os.path.basename(f), np.load(f)))
        else:
            z = np.load(f)
            out.append((os.path.basename(f), {k: z[k] for k in z.files}))
    return out


def session(path, optimized=None, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if optimized:
        so.optimized_model_filepath = optimized
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feed(s, x):
    if isinstance(x, dict):
        names = [i.name for i in s.get_inputs()]
        return {k: v for k, v in x.items() if k in names}
    return {s.get_inputs()[0].name: x}


def cmd_refs(model, data, out):
    s = session(model)
    refs = {}
    for name, x in samples(data):
        refs[name] = s.run(None, feed(s, x))[0]
    np.savez(out, **refs)


def op_counts(optimized):
    import onnx
    m = onnx.load(optimized, load_external_data=False)
    c = {}
    for n in m.graph.node:
        c[n.op_type] = c.get(n.op_type, 0) + 1
    return c


def cmd_eval(model, data, refs, out, det=False, limit=0):
    import onnxruntime as ort
    opt = out + ".opt.onnx"
    s = session(model, optimized=opt)
    refs = np.load(refs)
    sq, cos, iou = [], [], []
    for name, x in samples(data, limit):
        y = s.run(None, feed(s, x))[0].astype(np.float64).ravel()
        r = refs[name].astype(np.float64).ravel()
        e = np.sum((r - y) ** 2)
        sq.append(10 * np.log10(np.sum(r * r) / e) if e > 0 else 200.0)
        cos.append(float(np.dot(r, y) / (np.linalg.norm(r) * np.linalg.norm(y))))
        if det:
            a, b = r > 0.3, y > 0.3
            u = np.sum(a | b)
            iou.append(float(np.sum(a & b) / u) if u else 1.0)
    ops = op_counts(opt)
    os.remove(opt)
    res = {"model": model, "samples": len(sq), "ort": ort.__version__,
           "per_sample": {"sqnr": [float(v) for v in sq], "cos": cos, "iou": iou},
           "sqnr_mean": float(np.mean(sq)), "sqnr_min": float(np.min(sq)),
           "cos_mean": float(np.mean(cos)), "cos_min": float(np.min(cos)),
           "kernels": {k: v for k, v in sorted(ops.items()) if k in QUANT_OPS},
           "float_ops": {k: v for k, v in sorted(ops.items()) if k in ("Conv", "MatMul", "Gemm", "FusedConv", "FusedMatMul", "NchwcConv")}}
    if det:
        res["iou_mean"] = float(np.mean(iou))
        res["iou_min"] = float(np.min(iou))
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


def cmd_latency(models, data, out, runs=50):
    """Median ms of one held-out sample per model, one thread; the models take turns run by run so
    that load from other processes on the machine falls on all of them alike."""
    import time
    sess = [session(m) for m in models]
    name, x = samples(data, 1)[0]
    feeds = [feed(s, x) for s in sess]
    for s, f in zip(sess, feeds):
        for _ in range(5):
            s.run(None, f)
    t = [[] for _ in models]
    for _ in range(runs):
        for k, (s, f) in enumerate(zip(sess, feeds)):
            t0 = time.perf_counter()
            s.run(None, f)
            t[k].append((time.perf_counter() - t0) * 1000)
    res = {m: {"sample": name, "runs": runs, "median_ms": float(np.median(v)),
               "p10_ms": float(np.percentile(v, 10)), "p90_ms": float(np.percentile(v, 90))}
           for m, v in zip(models, t)}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


def cmd_table(root):
    """Markdown table from ROOT/res/*.json (python runs), ROOT/arm/*.json (the jar's verify reports on
    ROOT/arm-MODEL) and ROOT/res/latency-MODEL.json. VNNI figures are also given on exactly the
    samples the emulated run used, since those runs use subsets."""
    def load(p):
        try:
            with open(p) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def fmt(sq, cs, iou):
        c = "%.2f / %.2f, %.4f / %.4f" % (np.mean(sq), np.min(sq), np.mean(cs), np.min(cs))
        if iou:
            c += ", IoU %.3f" % np.mean(iou)
        return c

    def sub(r, idx):
        ps = r["per_sample"]
        return fmt([ps["sqnr"][k] for k in idx], [ps["cos"][k] for k in idx], [ps["iou"][k] for k in idx] if ps["iou"] else None)

    rows = ["| model | form | VNNI, all held-out | VNNI, Haswell's samples | Haswell (qemu) | VNNI, ARM's samples | "
            "ARM -cpu max (qemu, jar) | x86 integer kernels | left float |",
            "|" + "---|" * 9]
    for m in ("rec", "minilm", "det"):
        names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(root, m + "-held", "*.np[yz]")))
        arm_names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(root, "arm-" + m, "*.np[yz]")))
        arm_idx = [names.index(n) for n in arm_names]
        lat = load(os.path.join(root, "res", "latency-%s.json" % m)) or {}
        flat = [v for k, v in lat.items() if not k.startswith("m/")]
        for f in ("u8s8", "rr", "rrg", "s8s8", "u8u8", "hyb"):
            v = load(os.path.join(root, "res", "%s-%s-vnni.json" % (m, f)))
            if not v:
                continue
            h = load(os.path.join(root, "res", "%s-%s-haswell.json" % (m, f)))
            a = load(os.path.join(root, "arm", "%s-%s.json" % (m, f)))
            cells = [sub(v, range(v["samples"])) + " (%d)" % v["samples"]]
            cells.append(sub(v, range(h["samples"])) if h else "-")
            if h:
                c = "%.2f / %.2f, %.4f / %.4f" % (h["sqnr_mean"], h["sqnr_min"], h["cos_mean"], h["cos_min"])
                cells.append(c + (", IoU %.3f" % h["iou_mean"] if "iou_mean" in h else "") + " (%d)" % h["samples"])
            else:
                cells.append("-")
            cells.append(sub(v, arm_idx) + " (%d)" % len(arm_idx) if a else "-")
            if a:
                o = a["outputs"][0]
                rt = a["runtime"]["quantizedModel"]
                cells.append("%.2f / %.2f, %.4f / %.4f; %d integer kernels" % (
                    o["meanSqnrDb"], o["minSqnrDb"], o["meanCosine"], o["minCosine"], rt["integerKernels"]))
            else:
                cells.append("-")
            k = ", ".join("%s %d" % (x, y) for x, y in v.get("kernels", {}).items()
                          if x not in ("QuantizeLinear", "DequantizeLinear"))
            fl = ", ".join("%s %d" % (x, y) for x, y in v.get("float_ops", {}).items()) or "0"
            l = [x for kk, x in lat.items() if kk.endswith("%s-%s.onnx" % (m, f))]
            ls = "%.0f" % l[0]["median_ms"] if l else "-"
            if flat:
                ls += " (%.0f)" % flat[0]["median_ms"]
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % ((m, f) + tuple(cells) + (k, fl)))
    print("\n".join(rows))


def cmd_paired(root):
    """Per-sample differences of each form from u8s8 on this machine (all held-out samples): mean
    and standard error, so that a difference can be told from sample-to-sample spread."""
    for m in ("rec", "minilm", "det"):
        base = json.load(open(os.path.join(root, "res", "%s-u8s8-vnni.json" % m)))["per_sample"]
        for f in ("rr", "rrg", "hyb", "s8s8", "u8u8"):
            p = os.path.join(root, "res", "%s-%s-vnni.json" % (m, f))
            if not os.path.exists(p):
                continue
            ps = json.load(open(p))["per_sample"]
            out = []
            for k in ("sqnr", "cos", "iou"):
                if not base[k]:
                    continue
                d = np.array(ps[k]) - np.array(base[k])
                out.append("%s %+.4f +- %.4f" % (k, d.mean(), d.std(ddof=1) / np.sqrt(len(d))))
            print("%s %s - u8s8 (n=%d): %s" % (m, f, len(ps["sqnr"]), ", ".join(out)))


def main(a):
    if not a or a[0] in ("-h", "--help"):
        print(__doc__)
        return
    c = a[0]
    if c == "data":
        cmd_data(a[1])
    elif c == "encode":
        cmd_encode(a[1], a[2], a[3])
    elif c == "refs":
        cmd_refs(a[1], a[2], a[3])
    elif c == "eval":
        lim = int(a[a.index("--limit") + 1]) if "--limit" in a else 0
        cmd_eval(a[1], a[2], a[3], a[4], det="--det" in a, limit=lim)
    elif c == "latency":
        runs = int(a[a.index("--runs") + 1]) if "--runs" in a else 50
        if "--runs" in a:
            k = a.index("--runs")
            a = a[:k] + a[k + 2:]
        cmd_latency(a[1:-2], a[-2], a[-1], runs)
    elif c == "paired":
        cmd_paired(a[1])
    elif c == "table":
        cmd_table(a[1])
    else:
        raise SystemExit("unknown command " + c)


if __name__ == "__main__":
    main(sys.argv[1:])
