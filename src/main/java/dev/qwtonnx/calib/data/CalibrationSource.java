package dev.qwtonnx.calib.data;

/** A finite, re-iterable sequence of samples; each is one ORT run (it may itself hold a batch). */
public interface CalibrationSource extends Iterable<Sample> {
    int size();
}
