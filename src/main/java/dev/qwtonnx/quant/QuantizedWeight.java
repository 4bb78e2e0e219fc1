package dev.qwtonnx.quant;

import java.nio.FloatBuffer;

/**
 * A weight on the symmetric per-channel int8 grid: {@code values} in the float weight's layout,
 * {@code scales} indexed by output channel.
 */
public record QuantizedWeight(float[] scales, byte[] values) {
    /** {@code w} rounded to nearest at the scales that put each channel's largest |w| on ±qmax. */
    public static QuantizedWeight nearest(FloatBuffer w, long[] dims, int axis, int qmax) {
        float[] scales = QuantMath.symmetricScales(w, dims, axis, qmax);
        return new QuantizedWeight(scales, QuantMath.quantizeWeightsInt8(w, dims, axis, scales, qmax));
    }
}
