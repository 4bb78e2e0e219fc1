package dev.qwtonnx.calib;

/** How an activation's quantization range is chosen from what calibration observed. */
public enum RangeMethod {
    /** The smallest and largest values seen: nothing is clipped. */
    MINMAX,
    /** Two-sided percentile of the observed values: (100 - p)/2 % clipped on each side. */
    PERCENTILE,
    /** The threshold minimising the KL divergence between the value distribution and its quantized form (TensorRT). */
    ENTROPY,
    /** The clipping range minimising the expected squared uint8 quantization error of the observed values. */
    MSE;

    /** The name users type: lower case. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
