#!/usr/bin/env bash
# Calibration benchmark (issue 3): peak heap and time per range method on MiniLM, end-to-end time
# against ONNX Runtime's Python quantize_static, CWAC share, fidelity per range method.
# Usage: tools/bench-calib.sh [all|heap|e2e|fidelity|ppocr|samples|samples-w6|stages] [N1,N2] [E2E] [ROUNDS]
#        (default: all 100,1000 128 3)
# "samples": MiniLM fidelity of CWAC measured on all / 64 / 32 / 24 / 16 of E2E calibration sentences, over 4 calibration
# sets and 300 held-out sentences, beside plain PTQ; "samples-w6": the same at 6-bit weights (nearest rounding), on all /
# 16 / 12 / 8; "stages": MiniLM and detector fidelity per number of sequential stages. None of the three is in "all".
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench-classpath.sh
run() { java -Xmx2g "$@"; }
which=${1:-all}
args=("${2:-100,1000}" "${3:-128}" "${4:-3}")
cls=(-cp "$benchcp" dev.qwtonnx.bench.CalibrationBench)
# The heap section in a JVM of its own with a fixed young generation (-Xmn): otherwise G1 grows it
# with the run's length, and the heap pools' peak usage would measure the collector's sizing rather
# than what calibration keeps. The timed sections run with the JVM's default sizing, as users do.
if [[ $which == all || $which == heap ]]; then run -Xmn64m "${cls[@]}" heap "${args[@]}"; fi
if [[ $which == all ]]; then run "${cls[@]}" rest "${args[@]}"; elif [[ $which != heap ]]; then run "${cls[@]}" "$which" "${args[@]}"; fi
