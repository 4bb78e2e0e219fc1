#!/usr/bin/env bash
# Prints the ablation table (fidelity, quantize time, latency ratio, nodes added) on the real models.
# Usage: tools/bench.sh [minilm|ppocr|all]. Needs tools/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q test-compile
# Written to a file: on stdout Maven's colour codes would stick to the last classpath entry.
mvn -B -q -Dstyle.color=never dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench.classpath
cp=$(cat target/bench.classpath)
exec java -Xmx8g -cp "target/test-classes:target/classes:$cp" dev.qwtonnx.bench.Bench "${1:-all}"
