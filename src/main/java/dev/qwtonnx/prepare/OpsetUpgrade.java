package dev.qwtonnx.prepare;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Raises the default-domain opset of a model at opset 9..12 to 13 (where per-channel
 * DequantizeLinear exists), keeping what every node computes.
 *
 * <p>Operators whose signature or meaning changed on the way are rewritten: Squeeze, Unsqueeze and
 * ReduceSum {@code axes}, Split {@code split}, and (before 10) TopK {@code k} and Slice ranges, and
 * (before 11) Clip bounds and Pad pads/value move from attributes to constant inputs;
 * Softmax/LogSoftmax/Hardmax keep their old flatten-to-2-D meaning (a plain axis where the axis is
 * known to be the last one, otherwise Flatten → op → Reshape); Dropout becomes Identity (inference),
 * with a read mask replaced by the constant ONNX Runtime returned;
 * Upsample and opset-10 Resize become Resize-13 with the asymmetric coordinates they used; Scatter
 * becomes ScatterElements. Every other operator must be in {@link #UNCHANGED_SINCE}, the operators
 * whose version at the model's opset means the same at 13; any other fails with a message naming the
 * node and its operator. Custom-domain nodes pass through.
 *
 * <p>Every node is checked before anything is rewritten, so a model that cannot be upgraded yields
 * an error and no partial result. Subgraphs (If/Loop/Scan) and model-local functions are not
 * upgraded and are refused.
 */
public final class OpsetUpgrade implements Pass {
    public static final String NAME = "opset-upgrade";
    public static final long TARGET = 13;
    /** The lowest IR version that may import opset 13. */
    static final long MIN_IR_VERSION = 7;

    /**
     * Operator → the lowest source opset (at least 9) whose version of the operator means the same as
     * at opset 13 for every model valid at that opset. Operators introduced after 9 are listed from
     * the opset that introduced them. Changes that only widen the accepted types or allow negative
     * axes/indices do not count as changes.
     */
    static final Map<String, Integer> UNCHANGED_SINCE = unchangedSince();

    private static Map<String, Integer> unchangedSince() {
        Map<String, Integer> m = new HashMap<>();
        for (String op : List.of("Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan",
                "Atanh", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Compress", "Concat", "Constant",
                "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "DepthToSpace", "Div", "Elu", "Equal", "Erf",
                "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather", "Gemm", "GlobalAveragePool",
                "GlobalLpPool", "GlobalMaxPool", "Greater", "HardSigmoid", "Identity", "InstanceNormalization",
                "IsNaN", "LRN", "LSTM", "LeakyRelu", "Less", "Log", "LpNormalization", "MatMul", "Max", "MaxPool",
                "MaxRoiPool", "Mean", "MeanVarianceNormalization", "Min", "Mul", "Neg", "NonZero", "Not", "OneHot",
                "Or", "PRelu", "Pow", "RNN", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "Selu",
                "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Softplus", "Softsign", "SpaceToDepth",
                "Sqrt", "Sub", "Sum", "Tan", "Tanh", "TfIdfVectorizer", "Tile", "Transpose", "Where", "Xor")) {
            m.put(op, 9);
        }
        // Introduced at 10, or (Slice, TopK) took their current inputs at 10.
        for (String op : List.of("ConvInteger", "DequantizeLinear", "IsInf", "MatMulInteger", "Mod",
                "NonMaxSuppression", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "ReverseSequence", "RoiAlign",
                "Slice", "ThresholdedRelu", "TopK")) {
            m.put(op, 10);
        }
        // Introduced at 11, or (Clip, Pad, Resize) took their current inputs and meaning at 11.
        for (String op : List.of("BitShift", "Clip", "CumSum", "Det", "DynamicQuantizeLinear", "GatherElements",
                "GatherND", "MaxUnpool", "Pad", "Range", "Resize", "Round", "ScatterElements", "ScatterND", "SequenceConstruct",
                "SequenceEmpty", "SequenceAt", "SequenceErase", "SequenceInsert", "SequenceLength", "ConcatFromSequence",
                "SplitToSequence", "Unique")) {
            m.put(op, 11);
        }
        for (String op : List.of("Celu", "Einsum", "GreaterOrEqual", "LessOrEqual")) {
            m.put(op, 12);
        }
        return Map.copyOf(m);
    }

    private final long target;

    public OpsetUpgrade() {
        this(TARGET);
    }

    public OpsetUpgrade(long targetOpset) {
        if (targetOpset != TARGET) {
            throw new QwtException("only an upgrade to opset " + TARGET + " is supported, not " + targetOpset);
        }
        this.target = targetOpset;
    }

    @Override
    public String name() {
        return NAME;
    }

    /** One planned rewrite of one node, applied after every node has been checked. */
    private interface Rewrite {
        void apply(GraphEditor g);
    }

    @Override
    public PassResult run(Model model) {
        long from = model.opsetVersion(Model.DEFAULT_DOMAIN);
        if (from < 0 || from >= target) {
            return PassResult.unchanged(model);
        }
        if (from < 9) {
            throw new QwtException("cannot upgrade a model at opset " + from + " to " + target
                    + ": models below opset 9 are not supported");
        }
        if (model.proto().getFunctionsCount() > 0) {
            throw new QwtException("cannot upgrade a model with local functions from opset " + from + " to " + target);
        }
        GraphEditor g = new GraphEditor(model.graph());
        TensorFacts facts = TensorFacts.of(model.graph());
        List<Rewrite> plan = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (!Model.isDefaultDomain(n.getDomain())) {
                continue; // custom-domain nodes pass through untouched
            }
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG() || a.getGraphsCount() > 0) {
                    throw cannot(n, from, "nodes with subgraphs are not upgraded");
                }
            }
            Rewrite r = plan(g, facts, n, from);
            if (r != null) {
                plan.add(r);
            }
        }
        for (Rewrite r : plan) {
            r.apply(g);
        }
        Model out = model.withGraph(g.build()).withDefaultOpset(target);
        if (out.proto().getIrVersion() < MIN_IR_VERSION) {
            out = out.withProto(out.proto().toBuilder().setIrVersion(MIN_IR_VERSION).build());
        }
        return PassResult.changed(out);
    }

    private QwtException cannot(NodeProto n, long from, String why) {
        return new QwtException("cannot upgrade " + Nodes.describe(n) + " from opset " + from + " to " + target + ": " + why);
    }

    /** Checks one node and returns its rewrite (null when it stays as it is); throws when it cannot be upgraded. */
    private Rewrite plan(GraphEditor g, TensorFacts facts, NodeProto n, long from) {
        String op = n.getOpType();
        switch (op) {
            case "Squeeze", "Unsqueeze", "ReduceSum":
                return attrToInput(n, from, "axes");
            case "Split":
                return attrToInput(n, from, "split");
            case "Softmax", "LogSoftmax", "Hardmax":
                return coercedAxis(facts, n);
            case "Dropout":
                return dropout(g, facts, n, from);
            case "Upsample":
                return upsample(g, n, from);
            case "Scatter":
                return g2 -> g2.replace(n, Nodes.node("ScatterElements", n.getName(), n.getInputList(), n.getOutputList(),
                        NAME, n.getAttributeList().toArray(new AttributeProto[0])));
            default:
                break;
        }
        if (from < 10 && op.equals("Slice")) {
            return sliceInputs(n);
        }
        if (from < 10 && op.equals("TopK")) {
            long k = Nodes.attr(n, "k").orElseThrow(() -> cannot(n, from, "TopK has no k attribute")).getI();
            return g2 -> {
                String name = g2.names().fresh(base(n) + "_k");
                g2.putInitializer(Tensors.int64Tensor(name, new long[] {1}, new long[] {k}));
                g2.replace(n, Nodes.withoutAttr(n, "k").toBuilder().addInput(name).build());
            };
        }
        if (from < 11 && op.equals("Clip")) {
            return clipBounds(facts, n, from);
        }
        if (from < 11 && op.equals("Pad")) {
            return padInputs(facts, n, from);
        }
        if (from == 10 && op.equals("Resize")) {
            return resize10(g, n, from);
        }
        Integer since = UNCHANGED_SINCE.get(op);
        if (since == null) {
            throw cannot(n, from, "the upgrader does not know operator " + op);
        }
        if (since > from) {
            throw cannot(n, from, op + " is not defined at opset " + from + " in the form this upgrader knows (from opset " + since + ")");
        }
        return null;
    }

    private static String base(NodeProto n) {
        return n.getName().isEmpty() ? n.getOpType() : n.getName();
    }

    private static long[] longs(List<Long> v) {
        return v.stream().mapToLong(Long::longValue).toArray();
    }

    /** Moves an INTS attribute to an int64 initializer as input 1 (an absent attribute stays absent). */
    private Rewrite attrToInput(NodeProto n, long from, String attr) {
        if (Nodes.attr(n, attr).isEmpty()) {
            return null;
        }
        if (n.getInputCount() != 1) {
            throw cannot(n, from, "it has both an '" + attr + "' attribute and more than one input");
        }
        long[] v = longs(Nodes.intsAttr(n, attr));
        return g -> {
            String name = g.names().fresh(base(n) + "_" + attr);
            g.putInitializer(Tensors.int64Tensor(name, new long[] {v.length}, v));
            g.replace(n, Nodes.withoutAttr(n, attr).toBuilder().clearInput().addInput(n.getInput(0)).addInput(name).build());
        };
    }

    /**
     * Before 13, Softmax, LogSoftmax and Hardmax flattened their input to 2-D at {@code axis}
     * (default 1) and normalised each row; from 13 they work along one axis (default −1). Where the
     * axis is the last one (−1, or the last of a known rank) the two agree and the axis is just set
     * explicitly; elsewhere the old meaning is kept exactly with Flatten(axis) → op(axis 1) → Reshape
     * to the input's shape.
     */
    private static Rewrite coercedAxis(TensorFacts facts, NodeProto n) {
        long axis = Nodes.intAttr(n, "axis", 1);
        String x = n.getInput(0);
        int rank = facts.rank(x);
        if (axis == -1 || (rank > 0 && (axis < 0 ? axis + rank : axis) == rank - 1)) {
            return g -> g.replace(n, Nodes.withAttr(n, Nodes.intAttribute("axis", axis)));
        }
        return g -> {
            String b = base(n);
            String shape = g.names().fresh(b + "_input_shape");
            String flat = g.names().fresh(b + "_2d");
            String out2d = g.names().fresh(b + "_2d_out");
            NodeProto shapeNode = Nodes.node("Shape", g.names().fresh(b + "_shape"), List.of(x), List.of(shape), NAME);
            NodeProto flatten = Nodes.node("Flatten", g.names().fresh(b + "_flatten"), List.of(x), List.of(flat), NAME,
                    Nodes.intAttribute("axis", axis));
            NodeProto reshape = Nodes.node("Reshape", g.names().fresh(b + "_reshape"), List.of(out2d, shape),
                    List.of(n.getOutput(0)), NAME);
            NodeProto op = Nodes.withAttr(n.toBuilder().setInput(0, flat).setOutput(0, out2d).build(),
                    Nodes.intAttribute("axis", 1));
            g.insertBefore(n, shapeNode, flatten);
            g.insertAfter(n, reshape);
            g.replace(n, op);
        };
    }

    /**
     * Dropout at inference is the identity; its ratio moved from an attribute to an input at 12.
     * Where its mask is not read it becomes an Identity. Where the mask is read: ONNX Runtime's
     * Dropout before 12 returns an all-zero (false) mask at inference — of the input's type before
     * 10, bool from 10 — and from 12 an all-true one, so before 12 the mask becomes a constant
     * zero tensor of the input's shape (ConstantOfShape(Shape(x))); at 12 nothing changes.
     */
    private Rewrite dropout(GraphEditor g, TensorFacts facts, NodeProto n, long from) {
        boolean maskRead = n.getOutputCount() > 1 && !n.getOutput(1).isEmpty() && g.useCount(n.getOutput(1)) > 0;
        if (maskRead && from >= 12) {
            return null;
        }
        String x = n.getInput(0);
        NodeProto identity = Nodes.node("Identity", n.getName(), List.of(x), List.of(n.getOutput(0)), NAME);
        if (!maskRead) {
            return g2 -> {
                g2.replace(n, identity);
                for (int i = 1; i < n.getInputCount(); i++) {
                    g2.removeInitializerIfUnused(n.getInput(i)); // ratio, training_mode (from 12)
                }
            };
        }
        DataType maskType = from >= 10 ? DataType.BOOL : floatTypeOf(facts, n, from);
        return g2 -> {
            String b = base(n);
            String shape = g2.names().fresh(b + "_input_shape");
            NodeProto shapeNode = Nodes.node("Shape", g2.names().fresh(b + "_shape"), List.of(x), List.of(shape), NAME);
            ByteBuffer zero = ByteBuffer.allocate(maskType.bytes);
            NodeProto mask = Nodes.node("ConstantOfShape", g2.names().fresh(b + "_mask"), List.of(shape),
                    List.of(n.getOutput(1)), NAME, Nodes.tensorAttribute("value",
                            new HostTensor(maskType, new long[] {1}, zero).toProto("")));
            g2.replace(n, identity);
            g2.insertAfter(identity, shapeNode, mask);
        };
    }

    /**
     * The element type for a Clip bound, a Pad value or an opset-9 Dropout mask: the input's, which
     * for those operators had to be a float type. When it is not known statically, float (by far the most common case); a wrong guess makes
     * ONNX Runtime refuse the model, it cannot change a result.
     */
    private DataType floatTypeOf(TensorFacts facts, NodeProto n, long from) {
        int code = facts.elemType(n.getInput(0));
        if (code == 0) {
            return DataType.FLOAT;
        }
        if (code != DataType.FLOAT.code && code != DataType.DOUBLE.code && code != DataType.FLOAT16.code) {
            throw cannot(n, from, "its input has element type code " + code + ", not a float type");
        }
        return DataType.of(code);
    }

    private static TensorProto scalar(String name, DataType type, float v) {
        ByteBuffer b = ByteBuffer.allocate(type.bytes).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case DOUBLE -> b.putDouble(v);
            case FLOAT16 -> b.putShort(ai.onnxruntime.platform.Fp16Conversions.floatToFp16(v));
            default -> b.putFloat(v);
        }
        b.flip();
        return new HostTensor(type, new long[0], b).toProto(name);
    }

    /** Clip before 11: bounds {@code min}/{@code max} (attributes) become inputs of the input's type. */
    private Rewrite clipBounds(TensorFacts facts, NodeProto n, long from) {
        var min = Nodes.attr(n, "min");
        var max = Nodes.attr(n, "max");
        if (min.isEmpty() && max.isEmpty()) {
            return null;
        }
        DataType type = floatTypeOf(facts, n, from);
        return g -> {
            NodeProto.Builder b = Nodes.withoutAttr(Nodes.withoutAttr(n, "min"), "max").toBuilder();
            String lo = "";
            if (min.isPresent()) {
                lo = g.names().fresh(base(n) + "_min");
                g.putInitializer(scalar(lo, type, min.get().getF()));
            }
            b.addInput(lo);
            if (max.isPresent()) {
                String hi = g.names().fresh(base(n) + "_max");
                g.putInitializer(scalar(hi, type, max.get().getF()));
                b.addInput(hi);
            }
            g.replace(n, b.build());
        };
    }

    /** Pad before 11: {@code pads} becomes an int64 input, a non-zero {@code value} a scalar input. */
    private Rewrite padInputs(TensorFacts facts, NodeProto n, long from) {
        long[] pads = longs(Nodes.intsAttr(n, "pads"));
        if (Nodes.attr(n, "pads").isEmpty()) {
            throw cannot(n, from, "Pad has no pads attribute");
        }
        float value = Nodes.floatAttr(n, "value", 0f);
        boolean constantMode = Nodes.stringAttr(n, "mode", "constant").equals("constant");
        boolean withValue = constantMode && value != 0f;
        DataType type = withValue ? floatTypeOf(facts, n, from) : null;
        return g -> {
            String p = g.names().fresh(base(n) + "_pads");
            g.putInitializer(Tensors.int64Tensor(p, new long[] {pads.length}, pads));
            NodeProto.Builder b = Nodes.withoutAttr(Nodes.withoutAttr(n, "pads"), "value").toBuilder().addInput(p);
            if (withValue) {
                String v = g.names().fresh(base(n) + "_value");
                g.putInitializer(scalar(v, type, value));
                b.addInput(v);
            }
            g.replace(n, b.build());
        };
    }

    /** Slice before 10: {@code starts}, {@code ends} and optional {@code axes} become int64 inputs. */
    private Rewrite sliceInputs(NodeProto n) {
        return g -> {
            NodeProto.Builder b = Nodes.withoutAttr(Nodes.withoutAttr(Nodes.withoutAttr(n, "starts"), "ends"), "axes")
                    .toBuilder();
            for (String key : List.of("starts", "ends", "axes")) {
                if (key.equals("axes") && Nodes.attr(n, key).isEmpty()) {
                    continue;
                }
                long[] v = longs(Nodes.intsAttr(n, key));
                String name = g.names().fresh(base(n) + "_" + key);
                g.putInitializer(Tensors.int64Tensor(name, new long[] {v.length}, v));
                b.addInput(name);
            }
            g.replace(n, b.build());
        };
    }

    /**
     * Upsample (deprecated at 10) becomes Resize: the output size is floor(input · scale) in both,
     * and Upsample's coordinates are asymmetric (x_in = x_out / scale) with nearest rounding down.
     */
    private Rewrite upsample(GraphEditor g, NodeProto n, long from) {
        String mode = Nodes.stringAttr(n, "mode", "nearest");
        if (!mode.equals("nearest") && !mode.equals("linear")) {
            throw cannot(n, from, "Upsample mode '" + mode + "' is not supported");
        }
        float[] scalesAttr = Nodes.attr(n, "scales").map(a -> {
            float[] f = new float[a.getFloatsCount()];
            for (int i = 0; i < f.length; i++) {
                f[i] = a.getFloats(i);
            }
            return f;
        }).orElse(null);
        if (scalesAttr == null && (n.getInputCount() < 2 || n.getInput(1).isEmpty())) {
            throw cannot(n, from, "Upsample has no scales");
        }
        return g2 -> {
            String scales;
            if (scalesAttr != null) {
                scales = g2.names().fresh(base(n) + "_scales");
                g2.putInitializer(Tensors.floatTensor(scales, new long[] {scalesAttr.length}, scalesAttr));
            } else {
                scales = n.getInput(1);
            }
            g2.replace(n, resizeNode(n, scales, mode, "floor"));
        };
    }

    /**
     * Resize at opset 10 had inputs (X, scales) and, as ONNX Runtime runs it, asymmetric coordinates
     * with nearest rounding that goes down when enlarging and up when shrinking. Linear maps directly;
     * nearest needs constant scales that all enlarge (floor) or all shrink (ceil).
     */
    private Rewrite resize10(GraphEditor g, NodeProto n, long from) {
        String mode = Nodes.stringAttr(n, "mode", "nearest");
        if (!mode.equals("nearest") && !mode.equals("linear")) {
            throw cannot(n, from, "Resize mode '" + mode + "' is not defined at opset 10");
        }
        if (n.getInputCount() < 2 || n.getInput(1).isEmpty()) {
            throw cannot(n, from, "Resize has no scales input");
        }
        String nearestMode = null;
        if (mode.equals("nearest")) {
            HostTensor s = constant(g, n.getInput(1));
            if (s == null) {
                throw cannot(n, from, "nearest Resize needs constant scales to keep its opset-10 rounding");
            }
            boolean up = true;
            boolean down = true;
            for (float f : s.toFloats()) {
                up &= f >= 1f;
                down &= f <= 1f;
            }
            if (!up && !down) {
                throw cannot(n, from, "nearest Resize that enlarges some axes and shrinks others has no opset-13 equivalent");
            }
            nearestMode = up ? "floor" : "ceil";
        }
        String nm = nearestMode;
        return g2 -> g2.replace(n, resizeNode(n, n.getInput(1), mode, nm));
    }

    private static NodeProto resizeNode(NodeProto n, String scales, String mode, String nearestMode) {
        List<AttributeProto> attrs = new ArrayList<>();
        attrs.add(Nodes.stringAttribute("mode", mode));
        attrs.add(Nodes.stringAttribute("coordinate_transformation_mode", "asymmetric"));
        if (mode.equals("nearest")) {
            attrs.add(Nodes.stringAttribute("nearest_mode", nearestMode));
        }
        return Nodes.node("Resize", n.getName(), List.of(n.getInput(0), "", scales), n.getOutputList(), NAME,
                attrs.toArray(new AttributeProto[0]));
    }

    /** The value of a constant tensor: an initializer that is not a graph input, or a Constant node's value. */
    static HostTensor constant(GraphEditor g, String name) {
        TensorProto t = g.initializer(name);
        if (t != null) {
            return g.isGraphInput(name) ? null : Tensors.toHost(t);
        }
        NodeProto p = g.producer(name);
        if (p != null && p.getOpType().equals("Constant") && Model.isDefaultDomain(p.getDomain())) {
            var v = Nodes.attr(p, "value");
            if (v.isPresent() && v.get().hasT()) {
                return Tensors.toHost(v.get().getT());
            }
        }
        return null;
    }
}
