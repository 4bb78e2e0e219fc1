package dev.qwtonnx.quant;

/**
 * How float weights are put on the integer grid.
 *
 * <p>nearest: per-channel max-abs scale, round to nearest (what every PTQ tool does by default).
 * gptq: for layers with a 2-D weight (MatMul, Gemm), the scale is the clipping that minimises the
 * input-energy-weighted error and the rounding of each input row is corrected, in closed form, by the
 * rows not yet rounded (GPTQ / Optimal Brain Quantization with the layer-input second moments of the
 * calibration data). The integer weights differ; the graph does not. Conv layers keep nearest.
 * auto: gptq below 8 bits, where it recovers much of the coarser grid's loss, nearest at 8 bits,
 * where it changes nothing measurable and costs a pass over the data (docs/decisions/0011).
 */
public enum WeightRounding {
    AUTO, NEAREST, GPTQ;

    /** The rounding actually used for weights of {@code bits} bits. */
    public WeightRounding resolve(int bits) {
        return this != AUTO ? this : bits < 8 ? GPTQ : NEAREST;
    }
}
