package dev.qwtonnx.quant;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.target.Target;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Inserts QuantizeLinear/DequantizeLinear pairs in the form the target's kernels take (see
 * {@link Target}): per-tensor activations of the target's type and symmetry, symmetric weights per
 * output channel (or per tensor where the target takes only that) on the target's grid, and for
 * Conv and Gemm an int32 bias at scale x_scale * w_scale[c], or the float bias where the target
 * takes one. A layer without a bias is given a zero one, so that compensation can later fold a
 * shift into it without adding a node. For the default target ORT's CPU provider runs every
 * planned layer as a fused integer kernel.
 *
 * <p>Activation Q/DQ pairs feed only the quantized layers: float operators that read the same
 * tensor (a residual Add, say) keep reading the float value. A layer's output Q, where planned,
 * feeds every reader, as the integer kernel's output is all there is.
 *
 * <p>Each layer node it rewrites carries a metadata_props entry {@link Nodes#FROM} naming the
 * float node it was (what pairs it with the float model's layer later); the nodes it adds carry
 * {@link Nodes#CREATED_BY}.
 */
public final class QdqQuantizer implements Pass {
    public static final String NAME = "quantize-qdq";

    private final QuantOptions options;
    private final List<LayerPlan> layers;
    private final List<NodeProto> joins;
    private final Map<String, Range> ranges;
    private final Map<String, QuantizedWeight> roundedWeights;

    public QdqQuantizer(QuantOptions options, List<LayerPlan> layers, Map<String, Range> ranges) {
        this(options, layers, ranges, Map.of());
    }

    /**
     * @param roundedWeights by layer name, weights already on the grid (GPTQ's, or rounded to nearest
     *                       ahead of need); the other layers' weights are rounded to nearest here
     */
    public QdqQuantizer(QuantOptions options, List<LayerPlan> layers, Map<String, Range> ranges,
            Map<String, QuantizedWeight> roundedWeights) {
        this(options, layers, List.of(), ranges, roundedWeights);
    }

    /** @param joins residual Adds whose two inputs get Q/DQ too ({@link LayerMatcher.Result#joins}) */
    public QdqQuantizer(QuantOptions options, List<LayerPlan> layers, List<NodeProto> joins, Map<String, Range> ranges,
            Map<String, QuantizedWeight> roundedWeights) {
        this.options = options;
        this.joins = List.copyOf(joins);
        this.layers = List.copyOf(layers);
        this.ranges = Map.copyOf(ranges);
        this.roundedWeights = Map.copyOf(roundedWeights);
    }

    /**
     * Submits to {@code ahead} the rounding to nearest of each layer's weight in {@code prepared}, as
     * this pass rounds it: it depends on the weights alone, so it can run while calibration does. None
     * for GPTQ (its rounding needs the calibration data) or for a model of
     * {@link dev.qwtonnx.ort.OrtSessions#IN_MEMORY_FROM} or more (its int8 weights are made one
     * at a time, by the pass). A rounding that fails gives null: the pass rounds that weight again
     * and reports what is wrong.
     */
    public static Map<String, Supplier<QuantizedWeight>> roundAhead(Model prepared, List<LayerPlan> layers,
            QuantOptions options, AheadTasks ahead) {
        if (options.effectiveRounding() == WeightRounding.GPTQ
                || prepared.serializedSize() >= dev.qwtonnx.ort.OrtSessions.IN_MEMORY_FROM) {
            return Map.of();
        }
        Map<String, TensorProto> initializers = new HashMap<>();
        for (TensorProto t : prepared.graph().getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        Map<String, Supplier<QuantizedWeight>> out = new HashMap<>();
        for (LayerPlan l : layers) {
            TensorProto w = initializers.get(l.weight());
            if (w == null || !options.perChannel(l.kind())) {
                continue;
            }
            out.put(l.name(), ahead.submit(() -> {
                try {
                    return QuantizedWeight.nearest(Tensors.floatView(w), Tensors.dims(w), l.weightAxis(),
                            options.weightQmax());
                } catch (RuntimeException e) {
                    return null;
                }
            }));
        }
        return Map.copyOf(out);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        if (layers.isEmpty()) {
            return PassResult.unchanged(model);
        }
        if (model.opsetVersion(Model.DEFAULT_DOMAIN) < 13) {
            throw new QwtException("per-channel quantization needs opset 13 or later; the model imports opset "
                    + model.opsetVersion(Model.DEFAULT_DOMAIN) + " (run the prepare passes first)");
        }
        return PassResult.changed(model.withGraph(rewrite(model.graph(), new NameAuthority(model.graph()))));
    }

    /**
     * The planned layers of {@code graph} quantized, new names taken from {@code names}: for a
     * Loop or Scan body, the authority of the whole model, so that no name clashes with one
     * outside the body.
     */
    public GraphProto rewrite(GraphProto graph, NameAuthority names) {
        return rewrite(graph, names, false);
    }

    /**
     * As {@link #rewrite(GraphProto, NameAuthority)}; with {@code int32MatMulBias}, a MatMul's bias
     * Add also reads an int32 bias through a DequantizeLinear (scale x_scale * w_scale[c], like a
     * Conv's). ORT's MatMulAddFusion turns a 2-D MatMul + Add into a Gemm before its QDQ fusions
     * look: with a float bias that Gemm stays float, with a DQ'd int32 bias it becomes QGemm
     * (ORT 1.30). Loop and Scan bodies, whose state is typically 2-D, need it.
     */
    public GraphProto rewrite(GraphProto graph, NameAuthority names, boolean int32MatMulBias) {
        for (LayerPlan l : layers) {
            range(l.input());
            if (l.quantizeOutput()) {
                range(l.outputRangeTensor());
            }
        }
        for (NodeProto a : joins) {
            range(a.getInput(0));
            range(a.getInput(1));
        }
        GraphEditor g = new GraphEditor(graph, names);
        Map<String, Activation> quantized = new HashMap<>();
        for (LayerPlan l : layers) {
            // Provenance: the float node this layer is, which pairs it with the float model's layer later.
            NodeProto planned = current(g, l.node());
            NodeProto node = g.replace(planned, Nodes.withMetadata(planned, Nodes.FROM, l.name()));
            Activation x = quantized.computeIfAbsent(l.input(), t -> quantizeInput(g, t));
            node = g.setInput(node, 0, x.dq);
            node = g.setInput(node, 1, quantizeWeight(g, node, l));
            if (l.kind() != LayerKind.MATMUL && options.target().bias() == Target.Bias.FLOAT) {
                if (node.getInputCount() < 3 || node.getInput(2).isEmpty()) {
                    String zero = g.names().fresh(l.name() + "_bias");
                    g.putInitializer(Tensors.floatTensor(zero, new long[] {l.channels()}, new float[l.channels()]));
                    node = node.getInputCount() > 2 ? g.setInput(node, 2, zero)
                            : g.replace(node, node.toBuilder().addInput(zero).build());
                }
            } else if (l.kind() != LayerKind.MATMUL) {
                String bias = quantizeBias(g, node, l, x.scale);
                node = node.getInputCount() > 2 ? g.setInput(node, 2, bias)
                        : g.replace(node, node.toBuilder().addInput(bias).build());
            } else if (int32MatMulBias && l.biasAdd() != null && options.target().bias() == Target.Bias.INT32) {
                NodeProto add = current(g, l.biasAdd());
                TensorProto c = g.initializer(l.biasAddConst());
                String bias = quantizeBias(g, node, l, x.scale, add, Tensors.floats(c), l.biasAddConst(), Tensors.dims(c),
                        c.getDimsCount() - 1);
                g.replace(add, add.toBuilder().setInput(add.getInput(0).equals(l.biasAddConst()) ? 0 : 1, bias).build());
            }
            if (l.quantizeOutput()) {
                // Readers of the layer's output, quantized layers included, now read its DQ: no second Q.
                Activation y = quantizeOutput(g, l);
                quantized.put(l.outputRangeTensor(), y);
            }
        }
        for (NodeProto planned : joins) {
            // Both inputs of a residual Add through Q/DQ, for targets that run it in low precision
            // only then; an input already quantized for a layer shares that layer's DequantizeLinear.
            NodeProto add = current(g, planned);
            for (int i = 0; i < 2; i++) {
                NodeProto p = g.producer(add.getInput(i));
                if (p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain())) {
                    continue; // a layer's quantized output, read through its own DequantizeLinear
                }
                Activation x = quantized.computeIfAbsent(add.getInput(i), t -> quantizeInput(g, t));
                add = g.setInput(add, i, x.dq);
            }
        }
        for (LayerPlan l : layers) {
            g.removeInitializerIfUnused(l.weight());
            g.removeInitializerIfUnused(l.bias());
            g.removeInitializerIfUnused(l.biasAddConst());
        }
        return g.build();
    }

    private record Activation(String dq, float scale) {
    }

    private Range range(String tensor) {
        Range r = ranges.get(tensor);
        if (r == null) {
            throw new IllegalStateException("no calibrated range for tensor '" + tensor + "'");
        }
        return r;
    }

    /**
     * The node of the graph being rewritten that {@code planned} (a node of the graph as planned)
     * has become: the producer of its first output, which the rewrite moves to a new name only for
     * a layer already quantized (its output Q/DQ then writes the old name).
     */
    private static NodeProto current(GraphEditor g, NodeProto planned) {
        NodeProto n = g.producer(planned.getOutput(0));
        if (n == null || !n.getOpType().equals(planned.getOpType())) {
            throw new IllegalStateException("planned " + Nodes.describe(planned) + " is not in the graph");
        }
        return n;
    }

    private String[] scaleAndZeroPoint(GraphEditor g, String tensor, QuantMath.Affine a) {
        String scale = g.names().fresh(tensor + "_scale");
        String zp = g.names().fresh(tensor + "_zero_point");
        g.putInitializer(Tensors.floatScalar(scale, a.scale()));
        g.putInitializer(Tensors.intScalar(zp, options.target().activations().type(), a.zeroPoint()));
        return new String[] {scale, zp};
    }

    private QuantMath.Affine affine(Range r) {
        return QuantMath.activation(r, options.target().activations());
    }

    /** Q/DQ on a layer input; only the planned layers are rewired to read the DQ output. */
    private Activation quantizeInput(GraphEditor g, String tensor) {
        QuantMath.Affine a = affine(range(tensor));
        String[] sz = scaleAndZeroPoint(g, tensor, a);
        String q = g.names().fresh(tensor + "_quantized");
        String dq = g.names().fresh(tensor + "_dequantized");
        NodeProto qn = Nodes.node("QuantizeLinear", g.names().fresh(tensor + "_QuantizeLinear"),
                List.of(tensor, sz[0], sz[1]), List.of(q), NAME);
        NodeProto dqn = Nodes.node("DequantizeLinear", g.names().fresh(tensor + "_DequantizeLinear"),
                List.of(q, sz[0], sz[1]), List.of(dq), NAME);
        NodeProto producer = g.producer(tensor);
        if (producer != null) {
            g.insertAfter(producer, qn, dqn);
        } else {
            g.insertBefore(g.consumers(tensor).get(0), qn, dqn);
        }
        return new Activation(dq, a.scale());
    }

    private String quantizeWeight(GraphEditor g, NodeProto node, LayerPlan l) {
        TensorProto w = g.initializer(l.weight());
        long[] dims = Tensors.dims(w);
        // Read in place: a big model's mapped weight is never copied into the heap, as floats or ints.
        FloatBuffer values = Tensors.floatView(w);
        int qmax = options.weightQmax();
        boolean perChannel = options.perChannel(l.kind());
        QuantizedWeight rounded = perChannel ? roundedWeights.get(l.name()) : null;
        if (rounded == null) {
            rounded = perChannel ? QuantizedWeight.nearest(values, dims, l.weightAxis(), qmax)
                    : QuantizedWeight.nearestPerTensor(values, dims, l.weightAxis(), qmax);
        }
        String base = l.weight();
        String qName = g.names().fresh(base + "_quantized");
        String sName = g.names().fresh(base + "_scale");
        String zName = g.names().fresh(base + "_zero_point");
        String dq = g.names().fresh(base + "_dequantized");
        float[] scales = rounded.scales();
        boolean unsigned = options.target().weights().type() == DataType.UINT8;
        // uint8 weights hold q + 128 with zero point 128: the same grid, for kernels that take u8 weights only.
        g.putInitializer(unsigned ? Tensors.uint8Tensor(qName, dims, QuantizedWeight.offsetToUnsigned(rounded.values()))
                : Tensors.int8Tensor(qName, dims, rounded.values()));
        int[] zeros = new int[scales.length];
        java.util.Arrays.fill(zeros, unsigned ? 128 : 0);
        DataType zType = unsigned ? DataType.UINT8 : DataType.INT8;
        if (perChannel) {
            g.putInitializer(Tensors.floatTensor(sName, new long[] {scales.length}, scales));
            g.putInitializer(Tensors.byteTensor(zName, zType, new long[] {scales.length}, zeros));
            g.insertBefore(node, Nodes.node("DequantizeLinear", g.names().fresh(base + "_DequantizeLinear"),
                    List.of(qName, sName, zName), List.of(dq), NAME, Nodes.intAttribute("axis", l.weightAxis())));
        } else {
            g.putInitializer(Tensors.floatScalar(sName, scales[0]));
            g.putInitializer(Tensors.byteTensor(zName, zType, new long[0], new int[] {zeros[0]}));
            g.insertBefore(node, Nodes.node("DequantizeLinear", g.names().fresh(base + "_DequantizeLinear"),
                    List.of(qName, sName, zName), List.of(dq), NAME));
        }
        return dq;
    }

    private String quantizeBias(GraphEditor g, NodeProto node, LayerPlan l, float xScale) {
        float[] bias = l.bias() != null ? Tensors.floats(g.initializer(l.bias())) : new float[l.channels()];
        return quantizeBias(g, node, l, xScale, node, bias, l.bias() != null ? l.bias() : l.name() + "_bias",
                new long[] {l.channels()}, 0);
    }

    /** The int32 bias of {@code node} (the layer) as a DQ output read by {@code reader}, shaped {@code dims}. */
    private String quantizeBias(GraphEditor g, NodeProto node, LayerPlan l, float xScale, NodeProto reader,
            float[] bias, String base, long[] dims, int axis) {
        String wScaleName = g.producer(node.getInput(1)).getInput(1);
        float[] wScales = Tensors.floats(g.initializer(wScaleName));
        if (wScales.length == 1 && bias.length > 1) {
            // A per-tensor weight: one bias scale, given per channel (the same value) so that the
            // bias's DequantizeLinear keeps one form and compensation refolds it per channel.
            float w = wScales[0];
            wScales = new float[bias.length];
            java.util.Arrays.fill(wScales, w);
        }
        return int32Bias(g, reader, bias, QuantMath.biasScales(xScale, wScales), base, dims, axis, NAME);
    }

    /**
     * {@code bias} as int32 at {@code scales} (one per channel) read through a new DequantizeLinear
     * (axis {@code axis}) inserted before {@code reader}; returns the DequantizeLinear's output.
     */
    static String int32Bias(GraphEditor g, NodeProto reader, float[] bias, float[] scales, String base, long[] dims,
            int axis, String createdBy) {
        int[] q = QuantMath.quantizeBias(bias, scales);
        String qName = g.names().fresh(base + "_quantized");
        String sName = g.names().fresh(base + "_scale");
        String zName = g.names().fresh(base + "_zero_point");
        String dq = g.names().fresh(base + "_dequantized");
        g.putInitializer(Tensors.int32Tensor(qName, dims, q));
        g.putInitializer(Tensors.floatTensor(sName, new long[] {scales.length}, scales));
        g.putInitializer(Tensors.int32Tensor(zName, new long[] {scales.length}, new int[scales.length]));
        g.insertBefore(reader, Nodes.node("DequantizeLinear", g.names().fresh(base + "_DequantizeLinear"),
                List.of(qName, sName, zName), List.of(dq), createdBy, Nodes.intAttribute("axis", axis)));
        return dq;
    }

    /**
     * Q/DQ after a layer's output (after removing a Relu that the Q's clamp at zero makes redundant),
     * or after the MatMul itself, ahead of its bias Add, where the plan says so.
     */
    private Activation quantizeOutput(GraphEditor g, LayerPlan l) {
        String y = l.quantizedOutput();
        Range r = range(l.outputRangeTensor());
        String post = y;
        if (l.absorbedRelu() != null) {
            NodeProto relu = current(g, l.absorbedRelu());
            post = relu.getOutput(0);
            g.remove(relu);
            r = new Range(0f, Math.max(0f, r.max()));
        }
        NodeProto producer = g.producer(y);
        String pre = y;
        String dqOut;
        if (l.absorbedRelu() != null) {
            dqOut = post;
        } else if (g.isGraphOutput(y)) {
            // The graph output keeps its name and becomes the DQ output; the layer writes a new name.
            pre = g.names().fresh(y + "_float");
            NodeProto renamed = producer.toBuilder().setOutput(0, pre).build();
            g.replace(producer, renamed);
            producer = renamed;
            dqOut = y;
        } else {
            dqOut = g.names().fresh(y + "_dequantized");
        }
        QuantMath.Affine a = affine(r);
        String[] sz = scaleAndZeroPoint(g, y, a);
        String q = g.names().fresh(y + "_quantized");
        NodeProto qn = Nodes.node("QuantizeLinear", g.names().fresh(y + "_QuantizeLinear"),
                List.of(pre, sz[0], sz[1]), List.of(q), NAME);
        NodeProto dqn = Nodes.node("DequantizeLinear", g.names().fresh(y + "_DequantizeLinear"),
                List.of(q, sz[0], sz[1]), List.of(dqOut), NAME);
        if (!dqOut.equals(y) && !dqOut.equals(post)) {
            g.redirectConsumers(y, dqOut, Set.of());
        }
        g.insertAfter(producer, qn, dqn);
        return new Activation(dqOut, a.scale());
    }
}
