package dev.qwtonnx.calib;

/** Streaming statistics of one tensor's values from which a quantization range is chosen. */
public interface RangeObserver {
    void observe(float[] values);

    /** The range to quantize to; null before anything finite was observed. */
    Range range();
}
