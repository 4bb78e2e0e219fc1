package dev.qwtonnx.prepare;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.List;
import java.util.Set;

/**
 * Raises the default-domain opset to 13 (where per-channel DequantizeLinear exists), rewriting the
 * operators whose signature or meaning changed on the way: Squeeze/Unsqueeze/ReduceSum axes and
 * Split sizes become inputs; Softmax/LogSoftmax/Hardmax keep their old flatten-to-2-D meaning;
 * Dropout loses its ratio attribute (inference is the identity); before 11, Clip bounds, Pad pads
 * and before 10 Slice ranges become inputs. Every other operator must be on a list of those whose
 * meaning for a model valid at the old opset did not change; an operator that is not gets a clear
 * error naming it. Full opset coverage is a separate piece of work.
 */
public final class OpsetUpgrade implements Pass {
    public static final String NAME = "opset-upgrade";

    /** Operators whose behaviour, for models valid at opset 9 or later, is the same at 13. */
    private static final Set<String> UNCHANGED = Set.of("Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin",
            "Asin", "Asinh", "Atan", "Atanh", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Concat",
            "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Einsum", "Elu",
            "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "Gather", "GatherElements", "GatherND",
            "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "Identity",
            "InstanceNormalization", "IsInf", "IsNaN", "LeakyRelu", "Less", "LessOrEqual", "Log", "LRN", "MatMul",
            "Max", "MaxPool", "Mean", "Min", "Mod", "Mul", "Neg", "NonZero", "Not", "OneHot", "Or", "Pow", "PRelu",
            "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
            "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "Round", "Selu", "Shape",
            "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Softplus", "Softsign", "SpaceToDepth", "Sqrt", "Sub",
            "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "Transpose", "Where", "Xor", "Constant", "MatMulInteger",
            "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger");

    /** Operators unchanged from opset 11 (their inputs took their current form at 10 or 11). */
    private static final Set<String> UNCHANGED_SINCE_11 = Set.of("Clip", "Pad", "Slice", "Resize", "TopK",
            "ScatterElements", "ScatterND", "Compress", "Unique", "NonMaxSuppression", "RoiAlign", "Det", "Round",
            "DynamicQuantizeLinear", "If", "Loop", "Scan");

    private final long target;

    public OpsetUpgrade(long target) {
        if (target != 13) {
            throw new QwtException("only an upgrade to opset 13 is supported so far, not " + target);
        }
        this.target = target;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        long from = model.opsetVersion(Model.DEFAULT_DOMAIN);
        if (from >= target) {
            return PassResult.unchanged(model);
        }
        if (from < 9) {
            throw new QwtException("models below opset 9 are not supported (this one imports opset " + from + ")");
        }
        GraphEditor g = new GraphEditor(model.graph());
        for (NodeProto n : g.nodesSnapshot()) {
            if (!Model.isDefaultDomain(n.getDomain())) {
                continue; // custom-domain nodes pass through untouched
            }
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG() || a.getGraphsCount() > 0) {
                    throw new QwtException("cannot upgrade " + Nodes.describe(n) + " from opset " + from + " to " + target
                            + ": subgraphs are not upgraded yet");
                }
            }
            upgrade(g, n, from);
        }
        Model out = model.withGraph(g.build()).withDefaultOpset(target);
        if (out.proto().getIrVersion() < 7) {
            out = out.withProto(out.proto().toBuilder().setIrVersion(7).build());
        }
        return PassResult.changed(out);
    }

    private void upgrade(GraphEditor g, NodeProto n, long from) {
        switch (n.getOpType()) {
            case "Squeeze", "Unsqueeze", "ReduceSum" -> attrToInput(g, n, "axes", 1);
            case "Split" -> attrToInput(g, n, "split", 1);
            case "Softmax", "LogSoftmax", "Hardmax" -> coercedAxis(g, n);
            case "Dropout" -> g.replace(n, Nodes.withoutAttr(Nodes.withoutAttr(n, "ratio"), "is_test"));
            case "Clip" -> {
                if (from < 11) {
                    clipBounds(g, n);
                }
            }
            case "Pad" -> {
                if (from < 11) {
                    padInputs(g, n);
                }
            }
            case "Slice" -> {
                if (from < 10) {
                    sliceInputs(g, n);
                }
            }
            default -> {
                boolean ok = UNCHANGED.contains(n.getOpType())
                        || (from >= 11 && UNCHANGED_SINCE_11.contains(n.getOpType()));
                if (!ok) {
                    throw new QwtException("cannot upgrade " + Nodes.describe(n) + " from opset " + from + " to "
                            + target + ": the upgrader does not know operator " + n.getOpType());
                }
            }
        }
    }

    /** Moves an INTS attribute to an int64 initializer input at {@code index} (absent stays absent). */
    private static void attrToInput(GraphEditor g, NodeProto n, String attr, int index) {
        var a = Nodes.attr(n, attr);
        if (a.isEmpty()) {
            return;
        }
        long[] v = a.get().getIntsList().stream().mapToLong(Long::longValue).toArray();
        String name = g.names().fresh(n.getName().isEmpty() ? n.getOpType() + "_" + attr : n.getName() + "_" + attr);
        g.putInitializer(Tensors.int64Tensor(name, new long[] {v.length}, v));
        NodeProto.Builder b = Nodes.withoutAttr(n, attr).toBuilder();
        while (b.getInputCount() < index) {
            b.addInput("");
        }
        b.addInput(name);
        g.replace(n, b.build());
    }

    /**
     * Before 13, Softmax flattened its input to 2-D at {@code axis} (default 1) and normalised each
     * row. Where the axis is the last one (−1) that is what 13 does along −1; elsewhere the old
     * meaning is kept exactly with Flatten → Softmax(axis 1) → Reshape to the input's shape.
     */
    private static void coercedAxis(GraphEditor g, NodeProto n) {
        long axis = Nodes.intAttr(n, "axis", 1);
        if (axis == -1) {
            g.replace(n, Nodes.withAttr(n, Nodes.intAttribute("axis", -1)));
            return;
        }
        String x = n.getInput(0);
        String base = n.getName().isEmpty() ? n.getOpType() : n.getName();
        String shape = g.names().fresh(base + "_input_shape");
        String flat = g.names().fresh(base + "_flat");
        String soft = g.names().fresh(base + "_flat_out");
        NodeProto shapeNode = Nodes.node("Shape", g.names().fresh(base + "_Shape"), List.of(x), List.of(shape), NAME);
        NodeProto flatten = Nodes.node("Flatten", g.names().fresh(base + "_Flatten"), List.of(x), List.of(flat), NAME,
                Nodes.intAttribute("axis", axis));
        NodeProto op = n.toBuilder().setInput(0, flat).setOutput(0, soft).build();
        op = Nodes.withAttr(op, Nodes.intAttribute("axis", 1));
        NodeProto reshape = Nodes.node("Reshape", g.names().fresh(base + "_Reshape"), List.of(soft, shape),
                List.of(n.getOutput(0)), NAME);
        g.insertBefore(n, shapeNode, flatten);
        g.insertAfter(n, reshape);
        g.replace(n, op);
    }

    private static void clipBounds(GraphEditor g, NodeProto n) {
        float min = Nodes.floatAttr(n, "min", -Float.MAX_VALUE);
        float max = Nodes.floatAttr(n, "max", Float.MAX_VALUE);
        String lo = g.names().fresh(n.getName() + "_min");
        String hi = g.names().fresh(n.getName() + "_max");
        g.putInitializer(Tensors.floatScalar(lo, min));
        g.putInitializer(Tensors.floatScalar(hi, max));
        NodeProto c = Nodes.withoutAttr(Nodes.withoutAttr(n, "min"), "max").toBuilder().addInput(lo).addInput(hi).build();
        g.replace(n, c);
    }

    private static void padInputs(GraphEditor g, NodeProto n) {
        long[] pads = Nodes.intsAttr(n, "pads").stream().mapToLong(Long::longValue).toArray();
        float value = Nodes.floatAttr(n, "value", 0f);
        String p = g.names().fresh(n.getName() + "_pads");
        String v = g.names().fresh(n.getName() + "_value");
        g.putInitializer(Tensors.int64Tensor(p, new long[] {pads.length}, pads));
        g.putInitializer(Tensors.floatScalar(v, value));
        g.replace(n, Nodes.withoutAttr(Nodes.withoutAttr(n, "pads"), "value").toBuilder().addInput(p).addInput(v).build());
    }

    private static void sliceInputs(GraphEditor g, NodeProto n) {
        NodeProto.Builder b = Nodes.withoutAttr(Nodes.withoutAttr(Nodes.withoutAttr(n, "starts"), "ends"), "axes")
                .toBuilder();
        for (String key : List.of("starts", "ends", "axes")) {
            List<Long> v = Nodes.intsAttr(n, key);
            if (v.isEmpty() && key.equals("axes")) {
                continue;
            }
            String name = g.names().fresh(n.getName() + "_" + key);
            g.putInitializer(Tensors.int64Tensor(name, new long[] {v.size()}, v.stream().mapToLong(Long::longValue).toArray()));
            b.addInput(name);
        }
        g.replace(n, b.build());
    }

}
