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

    /** {@code w} rounded to nearest at one scale for the whole tensor (its largest |w| on ±qmax); one scale. */
    public static QuantizedWeight nearestPerTensor(FloatBuffer w, long[] dims, int axis, int qmax) {
        float[] scales = QuantMath.symmetricScales(w, dims, axis, qmax);
        float s = 0f;
        for (float c : scales) {
            s = Math.max(s, c);
        }
        java.util.Arrays.fill(scales, s);
        return new QuantizedWeight(new float[] {s}, QuantMath.quantizeWeightsInt8(w, dims, axis, scales, qmax));
    }

    /** Signed values as unsigned bytes holding value + 128 (a uint8 grid with zero point 128). */
    public static byte[] offsetToUnsigned(byte[] values) {
        byte[] u = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            u[i] = (byte) (values[i] ^ 0x80);
        }
        return u;
    }
}
