package dev.qwtonnx.cwac;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;

/**
 * A quantized layer's weight dequantized, (q - zero point) × scale with per-channel parameters,
 * computed element by element from the integer payload where it is: materialized, a big model's
 * weights would take four times their int8 size in the heap, a layer at a time.
 */
public record DequantizedWeight(HostTensor q, ByteBuffer bytes, long inner, long channels, float[] scale,
        float[] zeroPoint) {
    public int size() {
        return Math.toIntExact(q.numel());
    }

    /** Element {@code i}. */
    public float get(int i) {
        int c = (int) ((i / inner) % channels);
        return (HostTensor.floatAt(q.type(), bytes, i) - zeroPointOf(c)) * scaleOf(c);
    }

    /** Channel {@code c}'s scale (one for all where the scale is per tensor). */
    private float scaleOf(int c) {
        return scale.length == 1 ? scale[0] : scale[Math.min(c, scale.length - 1)];
    }

    /** Channel {@code c}'s zero point (one for all where it is per tensor). */
    private float zeroPointOf(int c) {
        return zeroPoint.length == 1 ? zeroPoint[0] : zeroPoint[Math.min(c, zeroPoint.length - 1)];
    }

    /**
     * Every element, decoded in one pass (a layer's weight at a time: four times its int8 size, for
     * as long as the caller compares it): runs of {@code inner} elements share a channel's scale and
     * zero point.
     */
    public float[] values() {
        int n = size();
        float[] out = new float[n];
        int run = (int) inner;
        if (run == 1 && channels > 1 && (q.type() == DataType.INT8
                || q.type() == DataType.UINT8)) {
            return innermost(out);
        }
        int c = 0;
        for (int start = 0; start < n; start += run) {
            float sc = scaleOf(c);
            float zc = zeroPointOf(c);
            int end = Math.min(n, start + run);
            switch (q.type()) {
                case INT8 -> {
                    for (int i = start; i < end; i++) {
                        out[i] = (bytes.get(i) - zc) * sc;
                    }
                }
                case UINT8 -> {
                    for (int i = start; i < end; i++) {
                        out[i] = ((bytes.get(i) & 0xff) - zc) * sc;
                    }
                }
                default -> {
                    for (int i = start; i < end; i++) {
                        out[i] = (HostTensor.floatAt(q.type(), bytes, i) - zc) * sc;
                    }
                }
            }
            c = c + 1 == channels ? 0 : c + 1;
        }
        return out;
    }

    /**
     * {@link #values} where the channel is the innermost axis (a MatMul's weight, [in, out], per output
     * column): every element has its own channel, so the general loop's runs of one element per scale would each
     * cost a loop's setup. The same arithmetic, element by element.
     */
    private float[] innermost(float[] out) {
        int ch = (int) channels;
        float[] sc = new float[ch];
        float[] zc = new float[ch];
        for (int c = 0; c < ch; c++) {
            sc[c] = scaleOf(c);
            zc[c] = zeroPointOf(c);
        }
        boolean unsigned = q.type() == DataType.UINT8;
        int c = 0;
        for (int i = 0; i < out.length; i++) {
            int v = unsigned ? bytes.get(i) & 0xff : bytes.get(i);
            out[i] = (v - zc[c]) * sc[c];
            if (++c == ch) {
                c = 0;
            }
        }
        return out;
    }

    /** Whether q, and the scale and zero point where given (null or empty: none), are constants of {@code g}. */
    public static boolean constant(GraphEditor g, String q, String scale, String zeroPoint) {
        return g.initializer(q) != null
                && (scale == null || scale.isEmpty() || g.initializer(scale) != null)
                && (zeroPoint == null || zeroPoint.isEmpty() || g.initializer(zeroPoint) != null);
    }

    /**
     * The initializer {@code q} dequantized with per-channel parameters along {@code axis} (a
     * missing scale is 1, a missing zero point 0); null when one of them is not constant.
     */
    public static DequantizedWeight of(GraphEditor g, String q, String scale, String zeroPoint, long axis) {
        TensorProto qt = g.initializer(q);
        if (qt == null) {
            return null;
        }
        HostTensor v = Tensors.toHost(qt);
        long[] dims = Tensors.dims(qt);
        float[] s = scale == null || scale.isEmpty() ? new float[] {1f} : constant(g, scale);
        float[] z = zeroPoint == null || zeroPoint.isEmpty() ? new float[] {0f} : constant(g, zeroPoint);
        if (s == null || z == null) {
            return null;
        }
        int ax = (int) (axis < 0 ? axis + dims.length : axis);
        long inner = 1;
        for (int i = ax + 1; i < dims.length; i++) {
            inner *= dims[i];
        }
        long channels = dims.length == 0 ? 1 : dims[Math.min(ax, dims.length - 1)];
        return new DequantizedWeight(v, v.bytes(), inner, channels, s, z);
    }

    private static float[] constant(GraphEditor g, String name) {
        TensorProto t = g.initializer(name);
        return t == null ? null : Tensors.floats(t);
    }
}
