#!/bin/bash
# The start-up floor of a JVM tool against ORT Python's whole quantize_static, on the small zoo models:
#   tools/bench/floor.sh [JAR] [ROUNDS] [model,model,...]
# For each model, medians over ROUNDS interleaved rounds of:
#   jvm+session  java (class archive, serial GC) running tools/bench/floor/OpenSession.java: ORT loaded, one
#                session over the model, nothing else;
#   import       python3 -c "import onnxruntime.quantization" (what the ORT tool imports before any work);
#   ort          tools/ort_quantize_static.py on the zoo's 64 calibration samples (as tools/bench/run.py).
# Tools only: not part of the build or the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
JAR=${1:-target/qwt-onnx.jar}
ROUNDS=${2:-5}
MODELS=${3:-oww-jarvis,oww-mel,silero-v5,ppocr-cls}
# The interpreter itself, not a wrapper (a pyenv shim adds about 0.3 s to every start), as run.py runs it.
PY=$(python3 -c 'import sys; print(sys.executable)')
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
javac -d "$W" -cp "$JAR" tools/bench/floor/OpenSession.java
first=$(echo "$MODELS" | cut -d, -f1)
# ORT's native library from the tool's cache where a run of the jar left it (else ORT unpacks it on every start).
NATIVE=$(ls -d "$HOME"/.cache/qwt-onnx/ort-* 2>/dev/null | head -1 || true)
FLAGS=(-XX:+UseSerialGC -cp "$JAR:$W")
[ -n "$NATIVE" ] && FLAGS+=(-Donnxruntime.native.path="$NATIVE")
java -XX:ArchiveClassesAtExit="$W/a.jsa" "${FLAGS[@]}" OpenSession ".cache/zoo/$first/model.onnx" >/dev/null 2>&1 || true
t() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
for m in ${MODELS//,/ }; do
  z=.cache/zoo/$m
  ort_in=$z/model.onnx; [ -f "$z/model-ort.onnx" ] && ort_in=$z/model-ort.onnx
  a=(); b=(); c=()
  for r in $(seq "$ROUNDS"); do
    a+=("$(t java -XX:SharedArchiveFile="$W/a.jsa" -Xlog:cds=off "${FLAGS[@]}" OpenSession "$z/model.onnx")")
    b+=("$(t "$PY" -c 'import onnxruntime.quantization')")
    c+=("$(t "$PY" tools/ort_quantize_static.py "$ort_in" "$W/o.onnx" "$z/calib" minmax)")
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
  printf '%s: jvm+session %.2f s, import onnxruntime.quantization %.2f s, ORT quantize_static %.2f s\n' \
    "$m" "$(med "${a[@]}")" "$(med "${b[@]}")" "$(med "${c[@]}")"
done
