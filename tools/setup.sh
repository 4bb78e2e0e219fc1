#!/usr/bin/env bash
# What the tests and benchmarks read beyond Maven's dependencies: Debian packages (text, photos,
# fonts, ONNX's conformance models, qemu-user and an arm64 JVM for the runtime tests), onnxruntime-web
# from npm, and the real models Maven does not bring. Idempotent; tools/test.sh
# runs it first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
[ -d /usr/share/games/fortunes ] || need+=(fortunes)
[ -d /usr/share/doc/opencv-doc/examples/data ] || need+=(opencv-doc)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
[ -d /usr/share/libonnx-testdata/data ] || need+=(libonnx-testdata)   # opset-upgrade conformance suite
# The runtime tests (tag "runtime"): x86 AVX2 and ARM64 under qemu-user, the latter in Debian's arm64 JVM.
{ command -v qemu-x86_64 && command -v qemu-aarch64; } >/dev/null 2>&1 || need+=(qemu-user)
arm64_jvm=/usr/lib/jvm/java-17-openjdk-arm64/bin/java
[ -x "$arm64_jvm" ] || need+=(openjdk-17-jre-headless:arm64)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [[ " ${need[*]} " == *":arm64 "* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# onnxruntime-web for the WebAssembly runtime tests, where ForeignRuntime looks for it by default.
ort_web_version=1.31.1
ort_web="$root/.cache/npm/node_modules/onnxruntime-web/package.json"
if ! grep -q "\"version\": \"$ort_web_version\"" "$ort_web" 2>/dev/null; then
  npm install --silent --no-save --no-audit --no-fund --prefix "$root/.cache/npm" "onnxruntime-web@$ort_web_version" >/dev/null
fi
"$root/tools/fetch-models.sh" >/dev/null
