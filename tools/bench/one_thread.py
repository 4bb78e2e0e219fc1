"""What tools/bench/latency.py and tools/bench/op_profile.py share: ORT CPU sessions at one intra-op
thread (issue 18's measure) and a zoo data folder's samples fed to them. Tools only."""
import argparse, glob, os
import numpy as np
import onnxruntime as ort


def arguments(rounds, count):
    """The command line both tools take: [--rounds N] [--samples N] DATA_DIR MODEL.onnx [...], with their
    defaults; returns the arguments and the sample files."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--samples", type=int, default=count)
    ap.add_argument("data")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    return a, samples(a.data, a.samples)


def samples(data_dir, count):
    """The first `count` .npz samples of `data_dir` (tools/bench/zoo.py's held/), in name order."""
    return sorted(glob.glob(os.path.join(data_dir, "*.npz")))[:count]


def session(model, profile_prefix=None):
    """An ORT CPU session of `model` at one intra-op and one inter-op thread; with a prefix, ORT's profiler on."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def feeds(s, files):
    """Each sample's arrays that `s` takes as inputs."""
    names = {i.name for i in s.get_inputs()}
    return [{k: v for k, v in np.load(f).items() if k in names} for f in files]
