package dev.qwtonnx.quant;

import dev.qwtonnx.calib.Range;

/** The arithmetic of linear quantization, in float32 where ORT computes in float32. */
public final class QuantMath {
    private QuantMath() {
    }

    /** Asymmetric uint8 parameters covering {@code r} and 0: (scale, zero point). */
    public record Affine(float scale, int zeroPoint) {
    }

    public static Affine uint8(Range r) {
        double lo = Math.min(0.0, r.min());
        double hi = Math.max(0.0, r.max());
        float scale = (float) ((hi - lo) / 255.0);
        if (!(scale > 0f) || !Float.isFinite(scale)) {
            return new Affine(1f, 0);
        }
        long zp = Math.round(-lo / scale);
        return new Affine(scale, (int) Math.max(0, Math.min(255, zp)));
    }

    /** Symmetric per-channel weight scales: max |w| over the channel divided by qmax. */
    public static float[] symmetricScales(float[] w, long[] dims, int axis, int qmax) {
        int channels = (int) dims[axis];
        long inner = 1;
        for (int i = axis + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        float[] maxAbs = new float[channels];
        for (int i = 0; i < w.length; i++) {
            int c = (int) ((i / inner) % channels);
            maxAbs[c] = Math.max(maxAbs[c], Math.abs(w[i]));
        }
        float[] s = new float[channels];
        for (int c = 0; c < channels; c++) {
            // An all-zero channel quantizes to zeros whatever the scale; any positive scale will do.
            s[c] = maxAbs[c] > 0f ? maxAbs[c] / qmax : 1f / qmax;
        }
        return s;
    }

    /** Rounds w / s[c] to the symmetric grid [-qmax, qmax]. */
    public static int[] quantizeWeights(float[] w, long[] dims, int axis, float[] scales, int qmax) {
        int channels = (int) dims[axis];
        long inner = 1;
        for (int i = axis + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        int[] q = new int[w.length];
        for (int i = 0; i < w.length; i++) {
            int c = (int) ((i / inner) % channels);
            double v = Math.rint((double) w[i] / scales[c]);
            q[i] = (int) Math.max(-qmax, Math.min(qmax, v));
        }
        return q;
    }

    /** The bias scale ORT requires, x_scale * w_scale[c], multiplied in float32 as ORT checks it. */
    public static float[] biasScales(float xScale, float[] wScales) {
        float[] s = new float[wScales.length];
        for (int c = 0; c < s.length; c++) {
            s[c] = xScale * wScales[c];
        }
        return s;
    }

    /** Rounds a float bias to int32 at the given per-channel scales, saturating. */
    public static int[] quantizeBias(float[] bias, float[] scales) {
        int[] q = new int[bias.length];
        for (int c = 0; c < bias.length; c++) {
            double v = Math.rint((double) bias[c] / scales[c]);
            q[c] = (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, v));
        }
        return q;
    }
}
