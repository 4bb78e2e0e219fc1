package dev.qwtonnx.quant;

import dev.qwtonnx.calib.Range;
import java.nio.FloatBuffer;

/** The arithmetic of linear quantization, in float32 where ORT computes in float32. */
public final class QuantMath {
    private QuantMath() {
    }

    /** Linear quantization parameters: (scale, zero point). */
    public record Affine(float scale, int zeroPoint) {
    }

    /**
     * The parameters of activations {@code a} covering {@code r} and 0: asymmetric over the type's
     * whole range (int8's zero point is uint8's minus 128, the same grid), or symmetric about zero
     * (zero point 0 for signed types; |x| max on ±(2^(bits-1) - 1) so that -128 is never needed).
     */
    public static Affine activation(Range r, dev.qwtonnx.target.Target.Activations a) {
        double lo = Math.min(0.0, r.min());
        double hi = Math.max(0.0, r.max());
        int bits = a.bits();
        boolean signed = a.type() == dev.qwtonnx.model.DataType.INT8 || a.type() == dev.qwtonnx.model.DataType.INT16;
        long levels = (1L << bits) - 1;
        long qmin = signed ? -(1L << (bits - 1)) : 0;
        if (a.symmetric()) {
            long qmax = (1L << (bits - 1)) - 1;
            float scale = (float) (Math.max(-lo, hi) / qmax);
            if (!(scale > 0f) || !Float.isFinite(scale)) {
                return new Affine(1f, signed ? 0 : (int) (qmax + 1));
            }
            return new Affine(scale, signed ? 0 : (int) (qmax + 1));
        }
        float scale = (float) ((hi - lo) / levels);
        if (!(scale > 0f) || !Float.isFinite(scale)) {
            return new Affine(1f, (int) qmin);
        }
        long zp = Math.round(-lo / scale) + qmin;
        return new Affine(scale, (int) Math.max(qmin, Math.min(qmin + levels, zp)));
    }

    /** Asymmetric uint8 parameters covering {@code r} and 0: ORT CPU's activations. */
    public static Affine uint8(Range r) {
        return activation(r, UINT8_ASYMMETRIC);
    }

    private static final dev.qwtonnx.target.Target.Activations UINT8_ASYMMETRIC =
            new dev.qwtonnx.target.Target.Activations(dev.qwtonnx.model.DataType.UINT8, false);

    /** Symmetric per-channel weight scales: max |w| over the channel divided by qmax. */
    public static float[] symmetricScales(float[] w, long[] dims, int axis, int qmax) {
        return symmetricScales(FloatBuffer.wrap(w), dims, axis, qmax);
    }

    /** As {@link #symmetricScales(float[], long[], int, int)}, reading the weight where it is (mapped, say). */
    public static float[] symmetricScales(FloatBuffer w, long[] dims, int axis, int qmax) {
        int channels = (int) dims[axis];
        float[] maxAbs = new float[channels];
        ChannelRuns.walk(w, channels, innerSize(dims, axis), new ChannelRuns.Kernel() {
            @Override
            public void acrossChannels(float[] a, int off, int i, int len, int c) {
                for (int t = 0; t < len; t++) {
                    maxAbs[c + t] = Math.max(maxAbs[c + t], Math.abs(a[off + t]));
                }
            }

            @Override
            public void withinChannel(float[] a, int off, int i, int len, int c) {
                float m = maxAbs[c];
                for (int t = 0; t < len; t++) {
                    m = Math.max(m, Math.abs(a[off + t]));
                }
                maxAbs[c] = m;
            }
        });
        float[] s = new float[channels];
        for (int c = 0; c < channels; c++) {
            // An all-zero channel quantizes to zeros whatever the scale; any positive scale will do.
            s[c] = maxAbs[c] > 0f ? maxAbs[c] / qmax : 1f / qmax;
        }
        return s;
    }

    /** Elements per step along {@code axis}: the product of the dimensions after it. */
    public static long innerSize(long[] dims, int axis) {
        long inner = 1;
        for (int i = axis + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        return inner;
    }

    /**
     * Rounds w / s[c] to the symmetric grid [-qmax, qmax] straight into int8 bytes: a big weight is
     * read where it is (a chunk at a time) and written once, with no int or float copy of it whole.
     */
    public static byte[] quantizeWeightsInt8(FloatBuffer w, long[] dims, int axis, float[] scales, int qmax) {
        if (qmax > Byte.MAX_VALUE) {
            throw new IllegalArgumentException("qmax " + qmax + " does not fit int8");
        }
        byte[] q = new byte[w.limit()];
        double lo = -qmax;
        double hi = qmax;
        ChannelRuns.walk(w, (int) dims[axis], innerSize(dims, axis), new ChannelRuns.Kernel() {
            @Override
            public void acrossChannels(float[] a, int off, int i, int len, int c) {
                for (int t = 0; t < len; t++) {
                    q[i + t] = (byte) Math.max(lo, Math.min(hi, Math.rint((double) a[off + t] / scales[c + t])));
                }
            }

            @Override
            public void withinChannel(float[] a, int off, int i, int len, int c) {
                double s = scales[c];
                for (int t = 0; t < len; t++) {
                    q[i + t] = (byte) Math.max(lo, Math.min(hi, Math.rint((double) a[off + t] / s)));
                }
            }
        });
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
