#!/usr/bin/env bash
# Prints the ablation table (fidelity, quantize time, latency ratio, nodes added) on the real models.
# Usage: tools/bench.sh [minilm|ppocr|all]. Needs tools/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench-classpath.sh
java -Xmx8g -cp "$benchcp" dev.qwtonnx.bench.Bench "${1:-all}"
