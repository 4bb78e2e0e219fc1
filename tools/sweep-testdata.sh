#!/usr/bin/env bash
# Runs the command line on every model of Debian's libonnx-testdata that can hold a layer (pytorch-converted,
# pytorch-operator, simple, and the node tests of Conv, Gemm, MatMul, Einsum and the recurrent cells), each
# calibrated on its own test data sets, and lists the runs that ended otherwise than with 0 (quantized) or
# 2 (a user error, one line): a crash, an internal error, a stack trace. Most of these models are refused,
# and must be refused in one line.
#   tools/sweep-testdata.sh [JAR]      (default target/qwt-onnx.jar; output in a temporary folder)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jar=$(realpath "${1:-$root/target/qwt-onnx.jar}")
data=/usr/share/libonnx-testdata/data
[ -d "$data" ] || { echo "libonnx-testdata is not installed ($data missing)" >&2; exit 2; }
out=$(mktemp -d)
cd "$out"   # a crash's hs_err file lands here
bad=0 total=0
models=$( (cd "$data" && find pytorch-converted pytorch-operator simple -name model.onnx;
  ls -d node/test_*conv* node/test_*gemm* node/test_*matmul* node/test_*lstm* node/test_*gru* \
    node/test_*rnn* node/test_einsum* | sed 's|$|/model.onnx|') | sort)
for m in $models; do
  d=$(dirname "$m"); n=$(echo "$d" | tr / _)
  timeout 300 java -jar "$jar" "$data/$m" "$out/$n.onnx" --calib "$data/$d" >"$n.out" 2>"$n.err"
  rc=$?
  total=$((total + 1))
  lines=$(wc -l <"$n.err")
  if { [ $rc -ne 0 ] && [ $rc -ne 2 ]; } || { [ $rc -eq 2 ] && [ "$lines" -ne 1 ]; }; then
    bad=$((bad + 1))
    echo "exit $rc, $lines lines on stderr: $d: $(head -c 200 "$n.err" | head -1)"
  fi
done
crashes=$(ls hs_err_pid*.log 2>/dev/null | wc -l)
echo "$total models, $bad ended otherwise than 0 or a one-line 2, $crashes hs_err files (in $out)"
[ $bad -eq 0 ] && [ "$crashes" -eq 0 ]
