#!/usr/bin/env bash
# Calibration benchmark (issue 3): peak heap and time per range method on MiniLM, end-to-end time
# against ONNX Runtime's Python quantize_static, CWAC share, fidelity per range method.
# Usage: tools/bench-calib.sh [minilm|ppocr|all] [N1,N2] [E2E]   (default: all 100,1000 128)
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q test-compile
mvn -B -q -Dstyle.color=never dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench.classpath
cp=$(cat target/bench.classpath)
# A fixed young generation (-Xmn): otherwise G1 grows it with the run's length, and the heap pools'
# peak usage would measure the collector's sizing rather than what calibration keeps.
exec java -Xmx2g -Xmn64m -cp "target/test-classes:target/classes:$cp" dev.qwtonnx.bench.CalibrationBench "${1:-all}" "${2:-100,1000}" "${3:-128}"
