#!/usr/bin/env bash
# The main job on the bundled example: quantizes testdata/example/cnn.onnx with its calibration
# samples and prints where the INT8 model is. Builds target/qwt-onnx.jar first when it is missing
# or older than the sources, so a fresh clone needs only Java 17 and Maven.
# Usage: tools/example.sh [OUT] [quantize options...]   (default OUT: target/example/cnn-int8.onnx)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jar=$root/target/qwt-onnx.jar
if [ ! -f "$jar" ] || [ -n "$(cd "$root" && find pom.xml proto src/main -newer "$jar" -print -quit)" ]; then
  echo "building $jar ..." >&2
  (cd "$root" && mvn -B -q -DskipTests package)
fi
out=$root/target/example/cnn-int8.onnx
if [ $# -gt 0 ] && [[ $1 != -* ]]; then out=$1; shift; fi
mkdir -p "$(dirname "$out")"
# The example is too small for int8 to pay (16x16 pixels, 8-16 channels): by default the cost model would keep
# every layer float, so the example asks for int8 anyway to show the int8 path.
java -jar "$jar" quantize "$root/testdata/example/cnn.onnx" "$out" --calib "$root/testdata/example/calib" --keep-slow-int8 "$@"
echo "INT8 model: $out (its report beside it unless --no-report or --report is given)"
