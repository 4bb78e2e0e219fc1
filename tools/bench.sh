#!/usr/bin/env bash
# Prints the ablation table (fidelity, quantize time, latency ratio, nodes added) on the real models.
# Usage: tools/bench.sh [minilm|ppocr|all]. Needs tools/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q test-compile
# Written to a file: on stdout Maven's colour codes would stick to the last classpath entry.
mvn -B -q -Dstyle.color=never dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench.classpath
cp=$(cat target/bench.classpath)
# A snapshot of the compiled classes: a rebuild while the bench runs must not pull classes from under it.
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
cp -r target/classes target/test-classes "$snap"/
java -Xmx8g -cp "$snap/test-classes:$snap/classes:$cp" dev.qwtonnx.bench.Bench "${1:-all}"
