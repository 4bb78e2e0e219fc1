#!/usr/bin/env python3
"""Two jars against each other, as a user runs them: whole `java -jar JAR MODEL OUT --calib DIR`
processes with the default options on zoo models, the jars alternating (their order swapped every
round, so a drift of the machine hits both alike), wall time and peak RSS from /usr/bin/time.

    python3 tools/bench/ab.py --old OLD.jar --new NEW.jar [--rounds 4] [--new-env K=V ...] [--args="--no-report"] minilm,ppocr-rec,...

`--new-env K=V` runs the new jar's processes with that variable set (the same jar twice, with and
without a setting of the environment, is an A/B of the setting); `--args` adds options to both jars'
command lines (split on spaces).

Prints per model the median wall time of each jar, the largest peak RSS, new/old, and whether the
two jars wrote the same model bytes (their last runs). Changes of a
few percent show here where tables made on different hours (tools/bench/run.py) differ by 15 %.
Tools only: not part of the build or the tests.
"""
import argparse, os, statistics, subprocess, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--old", required=True)
ap.add_argument("--new", required=True)
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--new-env", action="append", default=[], help="K=V set for the new jar's runs")
ap.add_argument("--args", default="", help="options added to both jars' command lines")
ap.add_argument("models")
a = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = tempfile.mkdtemp(prefix="qwt-ab-")
res = {}
envs = {"old": dict(os.environ), "new": dict(os.environ, **dict(kv.split("=", 1) for kv in a.new_env))}
for r in range(a.rounds):
    for m in a.models.split(","):
        z = os.path.join(root, ".cache", "zoo", m)
        pair = [("old", a.old), ("new", a.new)]
        for tag, jar in (pair if r % 2 == 0 else pair[::-1]):
            p = subprocess.run(["/usr/bin/time", "-f", "%e %M", "java", "-jar", jar, os.path.join(z, "model.onnx"),
                                os.path.join(out, f"{m}-{tag}.onnx"), "--calib", os.path.join(z, "calib")] + a.args.split(),
                               capture_output=True, text=True, env=envs[tag])
            if p.returncode != 0:
                raise SystemExit(f"{tag} on {m} failed: {p.stderr.strip().splitlines()[-1]}")
            wall, rss = p.stderr.strip().splitlines()[-1].split()
            res.setdefault((m, tag), []).append((float(wall), int(rss) // 1024))
for m in a.models.split(","):
    o, n = res[(m, "old")], res[(m, "new")]
    mo, mn = statistics.median(x[0] for x in o), statistics.median(x[0] for x in n)
    with open(os.path.join(out, f"{m}-old.onnx"), "rb") as fo, open(os.path.join(out, f"{m}-new.onnx"), "rb") as fn:
        same = "same output bytes" if fo.read() == fn.read() else "outputs DIFFER"
    print(f"{m}: old {mo:.2f} s ({max(x[1] for x in o)} MB)  new {mn:.2f} s ({max(x[1] for x in n)} MB)  "
          f"new/old {mn / mo:.3f}  {same}")
