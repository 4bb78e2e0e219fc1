package dev.qwtonnx.cwac;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.ChannelRuns;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantMath;
import dev.qwtonnx.quant.QuantizedWeight;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * A layer's local target (its float weight applied to the quantized model's own input) as the
 * quantized output plus the weight's rounding residual: W·x̂ + b = (Ŵ·x̂ + b̂) + (W − Ŵ)·x̂ + (b − b̂),
 * b̂ the bias as the quantized layer has it (rounded to int32, or the float bias itself). The
 * residual R = W − Ŵ is within a step or so of zero, so int8 at a per-channel scale of its own
 * holds it to 1/126 of its largest value, and the layer repeated on DequantizeLinear(R) reads the
 * same dequantized input as the quantized layer: ORT runs a MatMul's or Gemm's as an integer
 * kernel (MatMulIntegerToFloat), where a float copy of the layer would run a float GEMM over a
 * float copy of the weight (a Conv's stays a float Conv, ORT having no integer Conv with a float
 * output, but over an int8 initializer). The measuring model is then smaller and faster to build and
 * run than one holding a float copy of every weight, and the fitted gains differ from the float
 * copies' by far less than the gains' own departures from 1 (the residual's rounding is that small).
 *
 * <p>Only for layers whose measured output is Ŵ·x̂ plus a bias: the QDQ form where the output is
 * the layer's own or its bias Add's reading it directly. QOperator forms, a MatMul output
 * requantized before its bias Add, an absorbed node other than the bias Add (a BatchNormalization
 * another tool folded), or a weight that is not the float weight rounded (a residual over
 * {@link #MAX_STEPS} steps) keep the float copy.
 */
final class ResidualTarget {
    /** 7-bit residual: u8·s8 products of full ±127 weights can saturate on x86 CPUs without VNNI. */
    static final int LEVELS = 63;
    /** A weight further than this many of its steps from the float one is not a rounding of it. */
    static final double MAX_STEPS = 4;

    /** The residual of one layer, computed apart from the graph so that layers compute in parallel. */
    record Residual(QdqLayer layer, NodeProto node, NodeProto floatNode, long[] dims, int axis, byte[] values,
            float[] scales, float[] biasError) {
    }

    private ResidualTarget() {
    }

    /**
     * A weight's rounding residual R = W − Ŵ on int8 at per-channel scales of its own ({@code scales},
     * along {@code axis}), with the rounding Ŵ it was taken against when computed ahead of need (null
     * when computed from the quantized graph).
     */
    record WeightResidual(QuantizedWeight rounding, int axis, byte[] values, float[] scales) {
        /** Whether this was taken against the int8 weight {@code wq} (zero point 0) at {@code wScales} along {@code wAxis}. */
        boolean against(TensorProto wq, int wAxis, float[] wScales, float[] zps) {
            if (rounding == null || wAxis != axis || wq.getDataType() != DataType.INT8.code
                    || !Arrays.equals(wScales, rounding.scales())) {
                return false;
            }
            for (float z : zps) {
                if (z != 0) {
                    return false;
                }
            }
            // ByteBuffer.equals compares in vectorized blocks, so checking every weight costs little.
            return wq.getRawData().asReadOnlyByteBuffer().equals(ByteBuffer.wrap(rounding.values()));
        }
    }

    /**
     * The residual of the float weight {@code w} against its int8 rounding {@code rounding} (zero
     * point 0) along {@code axis}, or null if some channel is more than {@link #MAX_STEPS} steps
     * from it. For computing ahead of need, from the weights alone.
     */
    static WeightResidual of(FloatBuffer w, long[] dims, int axis, QuantizedWeight rounding) {
        return of(w, dims, axis, ByteBuffer.wrap(rounding.values()), false, rounding.scales(), new float[1], rounding);
    }

    /**
     * The residual of {@code l}'s weight, or null where the layer keeps a float copy (see the class
     * comment). {@code g} is the quantized graph, {@code fg} the float one; neither is changed.
     * {@code ahead}, if not null, gives the residual computed ahead of need, used if it was taken
     * against the weight the graph holds.
     */
    static Residual of(GraphEditor g, GraphEditor fg, QdqLayer l, FloatLayer f, Supplier<WeightResidual> ahead) {
        if (l.qlinear() != null || !absorbsOnlyItsBias(l, f)) {
            return null;
        }
        NodeProto node = g.producer(l.kind() == LayerKind.MATMUL && l.biasAdd() != null
                ? inputFromLayer(g, l) : l.output());
        NodeProto floatNode = f.node();
        if (node == null || !node.getName().equals(l.name()) || node.getInputCount() < 2
                || floatNode.getInputCount() < 2) {
            return null;
        }
        NodeProto wdq = g.producer(node.getInput(1));
        TensorProto w = fg.initializer(floatNode.getInput(1));
        if (wdq == null || !wdq.getOpType().equals("DequantizeLinear") || w == null
                || w.getDataType() != DataType.FLOAT.code || Tensors.isExternal(w)) {
            return null;
        }
        TensorProto wq = g.initializer(wdq.getInput(0));
        TensorProto ws = g.initializer(wdq.getInput(1));
        TensorProto wz = wdq.getInputCount() > 2 && !wdq.getInput(2).isEmpty() ? g.initializer(wdq.getInput(2)) : null;
        if (wq == null || ws == null || Tensors.isExternal(wq) || !Arrays.equals(Tensors.dims(wq), Tensors.dims(w))
                || (wq.getDataType() != DataType.INT8.code && wq.getDataType() != DataType.UINT8.code)) {
            return null;
        }
        long[] dims = Tensors.dims(w);
        long axisAttr = Nodes.intAttr(wdq, "axis", 1);
        int axis = (int) (axisAttr < 0 ? axisAttr + dims.length : axisAttr);
        float[] scales = Tensors.floats(ws);
        if (axis < 0 || axis >= dims.length || scales.length != dims[axis]) {
            return null; // per-tensor (or unreadable) weight scale: the float copy
        }
        float[] zps = wz == null ? new float[1] : Tensors.floats(wz);
        if (zps.length != 1 && zps.length != scales.length) {
            return null;
        }
        WeightResidual early = ahead == null ? null : ahead.get();
        WeightResidual r = early != null && early.against(wq, axis, scales, zps) ? early
                : of(Tensors.floatView(w), dims, axis, Tensors.toHost(wq).bytes(),
                        wq.getDataType() == DataType.UINT8.code, scales, zps, null);
        if (r == null) {
            return null;
        }
        float[] biasError = biasError(g, fg, l, f);
        if (l.biasQuantized() != null && biasError == null) {
            return null;
        }
        return new Residual(l, node, floatNode, dims, axis, r.values(), r.scales(), biasError);
    }

    /** R = W − (q − zp)·s per channel along {@code axis}, on int8 at ±{@link #LEVELS}; null past MAX_STEPS. */
    private static WeightResidual of(FloatBuffer w, long[] dims, int axis, ByteBuffer wq, boolean unsigned,
            float[] scales, float[] zps, QuantizedWeight rounding) {
        int channels = scales.length;
        float[] r = new float[Math.toIntExact(HostTensor.numel(dims))];
        byte[] q;
        if (wq.hasArray() && wq.arrayOffset() == 0 && wq.array().length == r.length) {
            q = wq.array();
        } else {
            q = new byte[r.length];
            wq.duplicate().get(q);
        }
        float[] zp = new float[channels];
        for (int c = 0; c < channels; c++) {
            zp[c] = zps.length == 1 ? zps[0] : zps[c];
        }
        int mask = unsigned ? 0xff : -1; // a uint8 weight's bytes read as 0..255
        float[] max = new float[channels];
        // Then each channel's largest |R| puts it on ±LEVELS.
        ChannelRuns.walk(w, channels, QuantMath.innerSize(dims, axis), new ChannelRuns.Kernel() {
            @Override
            public void acrossChannels(float[] a, int off, int i, int len, int c) {
                for (int t = 0; t < len; t++) {
                    float d = a[off + t] - ((q[i + t] & mask) - zp[c + t]) * scales[c + t];
                    r[i + t] = d;
                    max[c + t] = Math.max(max[c + t], Math.abs(d));
                }
            }

            @Override
            public void withinChannel(float[] a, int off, int i, int len, int c) {
                float z = zp[c];
                float s = scales[c];
                float m = max[c];
                for (int t = 0; t < len; t++) {
                    float d = a[off + t] - ((q[i + t] & mask) - z) * s;
                    r[i + t] = d;
                    m = Math.max(m, Math.abs(d));
                }
                max[c] = m;
            }
        });
        float[] rScales = new float[channels];
        float[] toGrid = new float[channels];
        for (int c = 0; c < channels; c++) {
            if (!(max[c] <= MAX_STEPS * Math.abs(scales[c]))) {
                return null;
            }
            rScales[c] = max[c] > 0 ? max[c] / LEVELS : 1f;
            toGrid[c] = max[c] > 0 ? LEVELS / max[c] : 0f;
        }
        // On the residual's own grid, by a float product rounded to nearest: the residual only
        // measures (it is never saved), and this costs a third of the weights' exact rounding (a double
        // division per element); |R|·LEVELS/max is at most LEVELS, and the clamp holds float error.
        byte[] values = new byte[r.length];
        ChannelRuns.walk(FloatBuffer.wrap(r), channels, QuantMath.innerSize(dims, axis), new ChannelRuns.Kernel() {
            @Override
            public void acrossChannels(float[] a, int off, int i, int len, int c) {
                for (int t = 0; t < len; t++) {
                    values[i + t] = onGrid(a[off + t] * toGrid[c + t]);
                }
            }

            @Override
            public void withinChannel(float[] a, int off, int i, int len, int c) {
                float k = toGrid[c];
                for (int t = 0; t < len; t++) {
                    values[i + t] = onGrid(a[off + t] * k);
                }
            }
        });
        return new WeightResidual(rounding, axis, values, rScales);
    }

    /** v rounded to nearest (half to even), within ±{@link #LEVELS}; branch-free (signs are random). */
    private static byte onGrid(float v) {
        return (byte) Math.max(-LEVELS, Math.min(LEVELS, (int) Math.rint(v)));
    }

    /**
     * b − b̂ per channel for a layer whose bias is quantized to int32 (the float copy's target has the
     * float bias, the measured output the rounded one), or null without an int32 bias or where the
     * float bias is not a constant of the float layer.
     */
    private static float[] biasError(GraphEditor g, GraphEditor fg, QdqLayer l, FloatLayer f) {
        if (l.biasQuantized() == null || l.biasScale() == null) {
            return null;
        }
        // The float layer's bias: a Conv's or Gemm's third input, a MatMul's bias Add constant; none is zero
        // (the quantizer gives a Conv without bias an int32 one of zeros).
        String floatBias = null;
        if (l.kind() != LayerKind.MATMUL) {
            NodeProto n = f.node();
            floatBias = n.getInputCount() > 2 && !n.getInput(2).isEmpty() ? n.getInput(2) : null;
        } else if (f.tail().size() == 1) {
            for (String in : f.tail().get(0).getInputList()) {
                floatBias = fg.isInitializer(in) ? in : floatBias;
            }
        }
        TensorProto bq = g.initializer(l.biasQuantized());
        TensorProto bs = g.initializer(l.biasScale());
        if (floatBias != null && fg.initializer(floatBias) == null || bq == null || bs == null) {
            return null;
        }
        float[] bf = floatBias == null ? new float[l.channels()] : Tensors.floats(fg.initializer(floatBias));
        float[] q = Tensors.floats(bq); // int32 values, widened (exact up to 2^24, past any bias step count here)
        float[] scale = Tensors.floats(bs);
        if (bf.length != l.channels() || q.length != l.channels() || (scale.length != 1 && scale.length != l.channels())) {
            return null;
        }
        float[] error = new float[l.channels()];
        for (int c = 0; c < error.length; c++) {
            error[c] = bf[c] - q[c] * scale[scale.length == 1 ? 0 : c];
        }
        return error;
    }

    /**
     * Appends DequantizeLinear(R) and the layer again on it, with the int32 bias's rounding error as
     * its bias (the quantized output has the rounded bias); returns the tensor (W − Ŵ)·x̂ + (b − b̂),
     * which added to the layer's measured output is its local target.
     */
    static String append(GraphEditor g, Residual r) {
        String base = r.layer().name() + "_residual";
        String values = g.names().fresh(base + "_weight");
        String scales = g.names().fresh(base + "_scale");
        g.putInitializer(Tensors.int8Tensor(values, r.dims(), r.values()));
        g.putInitializer(Tensors.floatTensor(scales, new long[] {r.scales().length}, r.scales()));
        String dequantized = g.names().fresh(base + "_dequantized");
        g.append(NodeProto.newBuilder().setOpType("DequantizeLinear").setName(g.names().fresh(base + "_dequantize"))
                .addInput(values).addInput(scales).addOutput(dequantized)
                .addAttribute(Nodes.intAttribute("axis", r.axis())).build());
        String product = g.names().fresh(base);
        NodeProto.Builder layer = r.floatNode().toBuilder().clearInput().clearOutput().clearMetadataProps()
                .setName(product).addInput(r.node().getInput(0)).addInput(dequantized);
        if (r.biasError() == null) {
            g.append(layer.addOutput(product).build());
            return product;
        }
        // The int32 bias's rounding, which the float layer does not have: a Conv's or Gemm's own bias
        // input (beta applies to it as to the bias), an Add after a MatMul.
        String error = g.names().fresh(base + "_bias_error");
        g.putInitializer(Tensors.floatTensor(error, new long[] {r.biasError().length}, r.biasError()));
        if (r.layer().kind() != LayerKind.MATMUL) {
            g.append(layer.addInput(error).addOutput(product).build());
            return product;
        }
        String unbiased = g.names().fresh(base + "_product");
        g.append(layer.addOutput(unbiased).build());
        g.append(NodeProto.newBuilder().setOpType("Add").setName(g.names().fresh(base + "_add_bias_error"))
                .addInput(unbiased).addInput(error).addOutput(product).build());
        return product;
    }

    /** Whether the float layer's absorbed nodes are at most the bias Add the quantized layer has too. */
    private static boolean absorbsOnlyItsBias(QdqLayer l, FloatLayer f) {
        if (f.tail().isEmpty()) {
            return l.biasAdd() == null || l.kind() != LayerKind.MATMUL;
        }
        return l.kind() == LayerKind.MATMUL && l.biasAdd() != null && f.tail().size() == 1
                && f.tail().get(0).getOpType().equals("Add");
    }

    /** The MatMul output a bias Add reads directly, or a tensor no layer produces when it does not. */
    private static String inputFromLayer(GraphEditor g, QdqLayer l) {
        NodeProto add = g.producer(l.output());
        if (add == null || !add.getName().equals(l.biasAdd())) {
            return "";
        }
        for (String in : add.getInputList()) {
            NodeProto p = g.producer(in);
            if (p != null && p.getName().equals(l.name())) {
                return in;
            }
        }
        return "";
    }
}
