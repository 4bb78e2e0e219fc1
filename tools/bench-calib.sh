#!/usr/bin/env bash
# Calibration benchmark (issue 3): peak heap and time per range method on MiniLM, end-to-end time
# against ONNX Runtime's Python quantize_static, CWAC share, fidelity per range method.
# Usage: tools/bench-calib.sh [minilm|ppocr|all] [N1,N2] [E2E]   (default: all 100,1000 128)
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q test-compile
mvn -B -q -Dstyle.color=never dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench.classpath
cp=$(cat target/bench.classpath)
exec java -Xmx2g -cp "target/test-classes:target/classes:$cp" dev.qwtonnx.bench.CalibrationBench "${1:-all}" "${2:-100,1000}" "${3:-128}"
