package dev.qwtonnx.quant;

/**
 * A weight on the symmetric per-channel int8 grid: {@code values} in the float weight's layout,
 * {@code scales} indexed by output channel.
 */
public record QuantizedWeight(float[] scales, int[] values) {
}
