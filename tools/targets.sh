#!/usr/bin/env bash
# Every --target on MiniLM and the PP-OCRv4 detector (and the recognizer for cpu): nodes added by
# compensation (cwac vs --method none), rule violations (verify --target), ORT's integer kernels here,
# and held-out fidelity (tools/cpu-forms.py eval: sentence cosine; the detector's IoU at 0.3). The
# data are tools/cpu-forms.py's (`data` and `refs`, as tools/cpu-forms.sh makes them in DIR).
# Usage: tools/targets.sh DIR [TARGET...]   (after `mvn -DskipTests package` and tools/cpu-forms.sh DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
D=$1; shift
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(cpu cpu-vnni arm64 wasm tensorrt qnn xnnpack nnapi openvino)
J=$root/target/qwt-onnx.jar
DET=$root/.cache/models/ch_PP-OCRv4_det_infer.onnx
mkdir -p "$D/t"
args_minilm=("$D/all-minilm-l6-v2.onnx" --calib-text "$D/minilm-calib.txt" --tokenizer "$D/all-minilm-l6-v2-tokenizer.json" --limit 64)
args_det=("$DET" --calib-images /work/fx/imgs --image-size 320x320 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)
[ -d /work/fx/imgs ] || { echo "needs the 7 OpenCV calibration images in /work/fx/imgs (see tools/compare-jars.sh)"; exit 2; }
echo "| model | target | nodes added by CWAC | rule violations | ORT integer kernels here | held-out fidelity |"
echo "|---|---|---|---|---|---|"
for m in minilm det; do
  declare -n a="args_$m"
  for t in "${targets[@]}"; do
    out=$D/t/$m-$t.onnx
    if ! err=$(java -jar "$J" quantize "${a[0]}" "$D/t/$m-$t-none.onnx" "${a[@]:1}" --target "$t" --method none \
        --no-report --quiet 2>&1); then
      echo "| $m | $t | — | — | — | not quantized: ${err#qwt-onnx: error: } |"; continue
    fi
    java -jar "$J" quantize "${a[0]}" "$out" "${a[@]:1}" --target "$t" --no-report --quiet
    added=$(python3 -c "import onnx,sys; print(len(onnx.load(sys.argv[1]).graph.node)-len(onnx.load(sys.argv[2]).graph.node))" "$out" "$D/t/$m-$t-none.onnx")
    v=$(java -jar "$J" verify "${a[0]}" "$out" --data "$D/$m-held" --runs 0 --target "$t" 2>&1)
    rules=$(echo "$v" | grep -o 'rule violations: [0-9]* of [0-9]* rules broken, [0-9]* nodes' || true)
    kernels=$(echo "$v" | grep -o 'ORT integer kernels: [0-9]*' | grep -o '[0-9]*$' || true)
    flag=""; [ $m = det ] && flag=--det
    python3 "$root/tools/cpu-forms.py" eval "$out" "$D/$m-held" "$D/refs-$m.npz" "$D/t/$m-$t.json" $flag > /dev/null
    fid=$(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
s='SQNR %.2f dB, cosine %.4f / %.4f' % (r['sqnr_mean'], r['cos_mean'], r['cos_min'])
print(s + (', IoU %.3f' % r['iou_mean'] if 'iou_mean' in r else ''))" "$D/t/$m-$t.json")
    echo "| $m | $t | $added | ${rules#rule violations: } | $kernels | $fid |"
  done
done
