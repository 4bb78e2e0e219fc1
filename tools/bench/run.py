#!/usr/bin/env python3
"""Whole-process timings of qwt-onnx against ONNX Runtime's Python quantize_static on the zoo (issue 17).

    python3 tools/bench/zoo.py all                      # the zoo, once (see its docstring)
    mvn -B -q -o -DskipTests package                    # target/qwt-onnx.jar
    python3 tools/bench/run.py [--models a,b] [--rounds 3] [--jar target/qwt-onnx.jar] [--out DIR]
    python3 tools/bench/run.py --fidelity [--models a,b] [--jar ...]

Each variant is a whole process timed by `/usr/bin/time -v`, as a user runs it:
  qwt       java -jar JAR quantize MODEL OUT --calib CALIB              (defaults, report included;
            --holdout 0.2 of the 64 samples measures the summary's fidelity)
  no-report the same with --no-report
  none      the same with --method none (plain PTQ, report included)
  ort       python3 tools/ort_quantize_static.py MODEL OUT CALIB minmax  (ORT 1.x quantize_static:
            QDQ, per-channel, MinMax, u8 activations, s8 weights, MatMul/Conv/Gemm, all 64 samples;
            quant_pre_process is not called, as ORT's own examples recommend but do not require).
            ORT is given zoo.py's model-ort.onnx where there is one: opset 13, no initializer listed
            as an input (see zoo.py's opset13: otherwise ORT writes an invalid MiniLM and quantizes
            the PP-OCR weights as activations, u8 per-tensor); --ort-original gives it the original
  ort-pre   (only when asked with --variants) quant_pre_process first, then the same: tools/bench/ort_static_pre.py
Rounds are interleaved: round r runs every variant of every model once, the variants of a model in an
order rotated by r, so that drift of a shared machine spreads over all of them. The table gives
medians over the rounds of wall time, user+sys CPU and peak RSS, and the ratios to ORT's wall time.

Afterwards, per model: the stages of one `--verbose` run of the default (lines "stage NAME: X s" on
stderr, top level only) and the float floor: the float model's forward passes over the 64
calibration samples in one ORT Python session (default threads, one warm-up run, the runs alone
timed), with the default run's wall time as a multiple of it.

--fidelity runs `java -jar JAR verify FLOAT INT8 --data HELD --runs 0` on the qwt, none and ort outputs of
the last round (quantizing them first, untimed, when absent) and prints the output lines, plus the
task's own agreement in ORT Python where cosine says little (detector: IoU of the maps > 0.3;
classifier, recognizer: arg-max agreement; VAD: speech decision > 0.5): speed is never to be bought
with fidelity. A variant that fails shows as "fail" with its exit code and the
last line of its stderr below the table. Tools only: not part of the build or the tests.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ZOO = os.path.join(ROOT, ".cache", "zoo")
VARIANTS = ["qwt", "no-report", "none", "ort"]
OPTIONAL = ["ort-pre"]


def zoo_models():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from zoo import MODELS
    return [m for m in MODELS if os.path.exists(os.path.join(ZOO, m, "model.onnx"))]


def meta(model):
    try:
        with open(os.path.join(ZOO, model, "meta.json")) as f:
            return json.load(f)
    except OSError:
        return {"family": "?"}


def command(a, model, variant, extra=()):
    src = os.path.join(ZOO, model, "model.onnx")
    calib = os.path.join(ZOO, model, "calib")
    out = os.path.join(a.out, model, variant + ".onnx")
    if variant.startswith("ort") and not a.ort_original and os.path.exists(os.path.join(ZOO, model, "model-ort.onnx")):
        src = os.path.join(ZOO, model, "model-ort.onnx")
    if variant == "ort":
        return [a.python, os.path.join(ROOT, "tools", "ort_quantize_static.py"), src, out, calib, "minmax"], out
    if variant == "ort-pre":
        return [a.python, os.path.join(ROOT, "tools", "bench", "ort_static_pre.py"), src, out, calib, "minmax"], out
    cmd = ["java", "-jar", a.jar, "quantize", src, out, "--calib", calib]
    cmd += {"qwt": [], "no-report": ["--no-report"], "none": ["--method", "none"]}[variant]
    return cmd + list(extra), out


def parse_time_v(text):
    def field(label):
        m = re.search(r"^\s*" + re.escape(label) + r".*?:\s*(\S+)\s*$", text, re.M)
        return m.group(1) if m else None
    wall = field("Elapsed (wall clock) time")
    parts = [float(p) for p in wall.split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return {"wall": seconds, "cpu": float(field("User time (seconds)")) + float(field("System time (seconds)")),
            "rss": int(field("Maximum resident set size (kbytes)")) / 1024.0}


def timed(a, model, variant, extra=(), tag=""):
    cmd, out = command(a, model, variant, extra)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tfile = os.path.join(a.out, model, variant + tag + ".time")
    # in the output folder: ORT's quantizer leaves temporary files in its working directory
    p = subprocess.run(["/usr/bin/time", "-v", "-o", tfile] + cmd, cwd=os.path.dirname(out), capture_output=True,
                       text=True)
    with open(os.path.join(a.out, model, variant + tag + ".log"), "w") as f:
        f.write(" ".join(cmd) + "\n" + p.stdout + p.stderr)
    r = parse_time_v(open(tfile).read())
    r["rc"] = p.returncode
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    r["err"] = lines[-1][:600] if lines else ""
    r["stderr"] = p.stderr
    return r


def float_floor(model):
    """Seconds of the float model's forward passes over the calibration set, one ORT session."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(os.path.join(ZOO, model, "model.onnx"), so, providers=["CPUExecutionProvider"])
    feeds = []
    for f in sorted(glob.glob(os.path.join(ZOO, model, "calib", "*.npz"))):
        with np.load(f) as z:
            feeds.append({k: z[k] for k in z.files})
    s.run(None, feeds[0])
    t0 = time.perf_counter()
    for feed in feeds:
        s.run(None, feed)
    return time.perf_counter() - t0


STAGE = re.compile(r"^\s{0,4}stage ([\w-]+): ([0-9.]+) s(?: \(\d+ ORT sessions?, \d+ runs?\))?\s*$")


def stages(stderr):
    return [(m.group(1), float(m.group(2))) for m in map(STAGE.match, stderr.splitlines()) if m]


def fmt_s(x):
    return "%.2f s" % x if x < 10 else "%.1f s" % x


def cell(rs, key, fmt):
    ok = [r for r in rs if r["rc"] == 0]
    if not ok:
        return "fail (%d)" % rs[0]["rc"]
    return fmt(statistics.median(r[key] for r in ok))


def med(rs, key):
    ok = [r[key] for r in rs if r["rc"] == 0]
    return statistics.median(ok) if ok else None


def bench(a, models):
    results = {m: {v: [] for v in a.variants} for m in models}
    for r in range(a.rounds):
        for m in models:
            k = r % len(a.variants)
            for v in a.variants[k:] + a.variants[:k]:
                res = timed(a, m, v)
                results[m][v].append(res)
                print("round %d %-11s %-9s wall %6.2f s  cpu %6.2f s  rss %6.0f MB%s" % (
                    r + 1, m, v, res["wall"], res["cpu"], res["rss"], "" if res["rc"] == 0 else "  FAILED rc=%d" % res["rc"]),
                    file=sys.stderr, flush=True)
    extra = {}
    for m in models:
        floor = float_floor(m)
        if a.no_stages:
            extra[m] = {"stages": [], "floor": floor, "verbose_wall": None, "verbose_rc": None}
            continue
        st = timed(a, m, "qwt", ["--verbose"], tag="-verbose")
        extra[m] = {"stages": stages(st["stderr"]) if st["rc"] == 0 else [], "floor": floor,
                    "verbose_wall": st["wall"], "verbose_rc": st["rc"]}
    return results, extra


def ratio(x, y):
    return "%.2f×" % (x / y) if x is not None and y else "–"


def table(a, models, results, extra):
    has = lambda v: v in a.variants
    print("| model | family | qwt wall | ORT wall | ratio | --no-report ratio | --method none wall "
          "| qwt peak RSS | ORT peak RSS | CPU s qwt / ORT | float floor | qwt / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failures = []
    for m in models:
        R = results[m]
        get = lambda v, k: med(R[v], k) if has(v) else None
        cpu = lambda v: "–" if not has(v) else "fail" if get(v, "cpu") is None else "%.1f" % get(v, "cpu")
        q, o, n = get("qwt", "wall"), get("ort", "wall"), get("no-report", "wall")
        fl = extra[m]["floor"]
        row = [m, meta(m).get("family", "?"),
               cell(R["qwt"], "wall", fmt_s) if has("qwt") else "–",
               cell(R["ort"], "wall", fmt_s) if has("ort") else "–",
               ratio(q, o), ratio(n, o),
               cell(R["none"], "wall", fmt_s) if has("none") else "–",
               cell(R["qwt"], "rss", lambda x: "%.0f MB" % x) if has("qwt") else "–",
               cell(R["ort"], "rss", lambda x: "%.0f MB" % x) if has("ort") else "–",
               "%s / %s" % (cpu("qwt"), cpu("ort")),
               "%.3f s" % fl, ("%.0f×" % (q / fl)) if q is not None and fl > 0 else "–"]
        print("| " + " | ".join(row) + " |")
        for v in a.variants:
            for res in R[v]:
                if res["rc"] != 0:
                    failures.append("%s %s: exit %d: %s" % (m, v, res["rc"], res["err"]))
                    break
    if has("ort-pre"):
        print("\n| model | ORT with quant_pre_process wall | its peak RSS | qwt / it | --no-report / it |")
        print("|---|---|---|---|---|")
        for m in models:
            R = results[m]
            p = med(R["ort-pre"], "wall")
            print("| %s | %s | %s | %s | %s |" % (m, cell(R["ort-pre"], "wall", fmt_s),
                                                 cell(R["ort-pre"], "rss", lambda x: "%.0f MB" % x),
                                                 ratio(med(R["qwt"], "wall") if has("qwt") else None, p),
                                                 ratio(med(R["no-report"], "wall") if has("no-report") else None, p)))
    if failures:
        print("\nFailures (first per variant; full output in %s/MODEL/VARIANT.log):\n" % a.out)
        for f in failures:
            print("- " + f)
    print("\nStages of one `--verbose` default run (stages of at least 0.05 s; s and multiple of the float floor):\n")
    for m in models:
        e = extra[m]
        if e["verbose_rc"] is None:
            print("- %s: not run (--no-stages), floor %.3f s" % (m, e["floor"]))
            continue
        if e["verbose_rc"] != 0:
            print("- %s: failed (exit %d)" % (m, e["verbose_rc"]))
            continue
        big = ", ".join("%s %.2f (%.1f×)" % (n, s, s / e["floor"]) if e["floor"] > 0 else "%s %.2f" % (n, s)
                        for n, s in e["stages"] if s >= 0.05)
        print("- %s (wall %.2f s, floor %.3f s): %s" % (m, e["verbose_wall"], e["floor"], big))


def task_metric(model, float_path, int8_path):
    """The task's own agreement on the held-out samples, where verify's cosine and SQNR say little:
    the detector's IoU of the 0.3-thresholded maps, the classifiers' and recognizer's arg-max."""
    import numpy as np
    import onnxruntime as ort
    kind = {"ppocr-det": "iou", "ppocr-cls": "top1", "ppocr-rec": "top1", "silero-v4": "vad",
            "silero-v5": "vad"}.get(model)
    if kind is None:
        return None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    f = ort.InferenceSession(float_path, so, providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(int8_path, so, providers=["CPUExecutionProvider"])
    scores = []
    for path in sorted(glob.glob(os.path.join(ZOO, model, "held", "*.npz"))):
        with np.load(path) as z:
            feed = {k: z[k] for k in z.files}
        a, b = f.run(None, feed)[0], q.run(None, feed)[0]
        if kind == "iou":
            x, y = a > 0.3, b > 0.3
            union = np.logical_or(x, y).sum()
            scores.append(np.logical_and(x, y).sum() / union if union else 1.0)
        elif kind == "top1":
            scores.append(float(np.mean(a.argmax(-1) == b.argmax(-1))))
        else:  # speech decision at 0.5
            scores.append(float((a.ravel()[0] > 0.5) == (b.ravel()[0] > 0.5)))
    name = {"iou": "IoU of maps > 0.3", "top1": "arg-max agreement", "vad": "speech decision (> 0.5) agreement"}[kind]
    return "%s: mean %.4f, min %.4f over %d held-out samples" % (name, np.mean(scores), np.min(scores), len(scores))


def fidelity(a, models):
    for m in models:
        print("### %s" % m)
        for v in ("qwt", "none", "ort"):  # none: qwt-onnx's plain PTQ, for CWAC's gain
            cmd, out = command(a, m, v)
            if not os.path.exists(out):
                os.makedirs(os.path.dirname(out), exist_ok=True)
                p = subprocess.run(cmd, cwd=os.path.dirname(out), capture_output=True, text=True)
                if p.returncode != 0:
                    print("%s: quantize failed (exit %d)" % (v, p.returncode))
                    continue
            p = subprocess.run(["java", "-jar", a.jar, "verify", os.path.join(ZOO, m, "model.onnx"), out,
                                "--data", os.path.join(ZOO, m, "held"), "--runs", "0"],
                               cwd=ROOT, capture_output=True, text=True)
            lines = [l for l in (p.stdout + p.stderr).splitlines()
                     if l.startswith(("output", "layers:", "ORT integer")) or "top-1" in l or "IoU" in l]
            if p.returncode != 0 and not lines:
                lines = [(p.stdout + p.stderr).strip().splitlines()[-1:] or ["?"]][0]
            for l in lines:
                print("%-4s %s" % (v, l.strip()))
            extra = task_metric(m, os.path.join(ZOO, m, "model.onnx"), out)
            if extra:
                print("%-4s %s" % (v, extra))
        print()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="", help="comma-separated zoo models (default: all in .cache/zoo)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jar", default=os.path.join(ROOT, "target", "qwt-onnx.jar"))
    p.add_argument("--variants", default=",".join(VARIANTS), help="some of " + ",".join(VARIANTS + OPTIONAL))
    p.add_argument("--out", default="/tmp/qwt-bench", help="where the quantized models and logs go")
    p.add_argument("--python", default=sys.executable or "python3")
    p.add_argument("--ort-original", action="store_true",
                   help="give ORT the original model (default: zoo.py's model-ort.onnx where there is one)")
    p.add_argument("--no-stages", action="store_true", help="skip the --verbose run of each model")
    p.add_argument("--fidelity", action="store_true", help="held-out fidelity instead of timings")
    a = p.parse_args()
    a.jar = os.path.abspath(a.jar)
    a.out = os.path.abspath(a.out)
    a.variants = [v for v in a.variants.split(",") if v]
    models = [m for m in a.models.split(",") if m] or zoo_models()
    missing = [m for m in models if not os.path.exists(os.path.join(ZOO, m, "model.onnx"))]
    if missing:
        raise SystemExit("not in the zoo: %s (run tools/bench/zoo.py all)" % ", ".join(missing))
    if a.fidelity:
        fidelity(a, models)
        return
    print("jar %s, %d round(s), models %s" % (a.jar, a.rounds, ",".join(models)), file=sys.stderr)
    results, extra = bench(a, models)
    table(a, models, results, extra)


if __name__ == "__main__":
    main()
