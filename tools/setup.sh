#!/usr/bin/env bash
# What the tests and benchmarks read beyond Maven's dependencies: Debian packages (text, photos,
# fonts, ONNX's conformance models) and the real models Maven does not bring. Idempotent; tools/test.sh
# runs it first.
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
