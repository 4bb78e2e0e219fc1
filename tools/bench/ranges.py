#!/usr/bin/env python3
"""Held-out fidelity of the zoo quantized with several sets of options (e.g. range methods), on two halves.

    python3 tools/bench/ranges.py --out DIR [--models a,b] [--jar JAR] ";--calibrate percentile"

Each option set (separated by ';', the empty one is the defaults) quantizes every model once with
`--no-report` (an output already in DIR is reused); then the float and int8 models run on the model's
held-out samples in ONNX Runtime here. Per half of the held-out set (A: the first, B: the second; choose
on A, report on B): SQNR of the energies summed (as qwt-onnx's summary), the mean of each sample's
dB, and the task's own agreement (IoU of maps > 0.3 for detectors, arg-max agreement for the
recognizers and the classifier, the speech decision for the VADs, cosine otherwise).
"""
import argparse
import glob
import os
import subprocess

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, ".cache", "zoo")


def task(model, a, b):
    if "det" in model:
        x, y = a > 0.3, b > 0.3
        union = (x | y).sum()
        return 1.0 if union == 0 else (x & y).sum() / union
    if model.startswith("ppocr"):
        return float(np.mean(a.argmax(-1) == b.argmax(-1)))
    if model.startswith("silero"):
        return float((a.ravel()[0] > 0.5) == (b.ravel()[0] > 0.5))
    return float(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))


def summary(rows):
    sig, err, t = rows[:, 0], rows[:, 1], rows[:, 2]
    per = np.minimum(200, 10 * np.log10(sig / np.maximum(err, 1e-30)))
    return "SQNR %6.2f dB (mean of dB %6.2f), task %.4f" % (
        10 * np.log10(sig.sum() / max(err.sum(), 1e-30)), per.mean(), t.mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", help="option sets separated by ';' (an empty one: the defaults)")
    p.add_argument("--models", default="", help="comma-separated zoo models (default: all in .cache/zoo)")
    p.add_argument("--jar", default=os.path.join(ROOT, "target", "qwt-onnx.jar"))
    p.add_argument("--out", required=True)
    a = p.parse_args()
    models = [m for m in a.models.split(",") if m] or sorted(
        d for d in os.listdir(ZOO) if os.path.exists(os.path.join(ZOO, d, "model.onnx")))
    os.makedirs(a.out, exist_ok=True)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    for m in models:
        f = ort.InferenceSession(os.path.join(ZOO, m, "model.onnx"), so)
        feeds = [dict(np.load(x)) for x in sorted(glob.glob(os.path.join(ZOO, m, "held", "*.npz")))]
        refs = [f.run(None, x) for x in feeds]
        for v in a.variants.split(";"):
            tag = "".join(c if c.isalnum() else "_" for c in v.strip()) or "default"
            out = os.path.join(a.out, "%s.%s.onnx" % (m, tag))
            if not os.path.exists(out):
                r = subprocess.run(["java", "-jar", a.jar, os.path.join(ZOO, m, "model.onnx"), out, "--calib",
                                    os.path.join(ZOO, m, "calib"), "--no-report", "--quiet"] + v.split(),
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print("%-14s %-24s failed: %s" % (m, v.strip() or "defaults", r.stderr.strip()[-200:]))
                    continue
            q = ort.InferenceSession(out, so)
            rows = []
            for x, ref in zip(feeds, refs):
                y = q.run(None, x)
                rows.append((sum(float((o ** 2).sum()) for o in ref),
                             sum(float(((o - z) ** 2).sum()) for o, z in zip(ref, y)), task(m, ref[0], y[0])))
            rows = np.array(rows)
            h = len(rows) // 2
            print("%-14s %-24s A: %s | B: %s" % (m, v.strip() or "defaults", summary(rows[:h]), summary(rows[h:])),
                  flush=True)


if __name__ == "__main__":
    main()
