#!/usr/bin/env bash
# One-time set-up on a fresh machine: system packages the tests read (text, photos, fonts), the
# real models that Maven does not bring, and the self-contained jar target/qwt-onnx.jar.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
[ -d /usr/share/games/fortunes ] || need+=(fortunes)
[ -d /usr/share/doc/opencv-doc/examples/data ] || need+=(opencv-doc)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
[ -d /usr/share/libonnx-testdata/data ] || need+=(libonnx-testdata)   # opset-upgrade conformance suite
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$root/tools/fetch-models.sh" >/dev/null
(cd "$root" && mvn -B -q -DskipTests package)
echo "set-up done: $root/target/qwt-onnx.jar"
