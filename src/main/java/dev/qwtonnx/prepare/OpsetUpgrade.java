package dev.qwtonnx.prepare;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.TensorFacts;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Raises the default-domain opset of a model at opset 7..20 to 13 (where per-channel
 * DequantizeLinear exists) or to a higher target up to {@link #MAX_TARGET}, keeping what every node
 * computes. The upgrade runs in two steps, each checked on every node before anything is rewritten:
 * up to 13, then from 13 to the target.
 *
 * <p>Up to 13, operators whose signature or meaning changed on the way are rewritten: Squeeze,
 * Unsqueeze and ReduceSum {@code axes}, Split {@code split}, and (before 10) TopK {@code k} and Slice
 * ranges, and (before 11) Clip bounds and Pad pads/value move from attributes to constant inputs;
 * Softmax/LogSoftmax/Hardmax keep their old flatten-to-2-D meaning (a plain axis where the axis is
 * known to be the last one, otherwise Flatten → op → Reshape); Dropout becomes Identity (inference),
 * with a read mask replaced by the constant ONNX Runtime returned; Upsample (scales as attribute at
 * 7/8, as input at 9) and opset-10 Resize become Resize-13 with the asymmetric coordinates they used;
 * Scatter becomes ScatterElements; (before 9) BatchNormalization loses {@code spatial} (a non-spatial
 * one runs on the input flattened to 2-D) and Scan-8, which scanned a batch of sequences, becomes a
 * Scan over the batch whose body is the Scan-9 over one sequence.
 *
 * <p>From 13 to the target: the {@code axes} of the other Reduce* operators become an input (18),
 * Split without sizes states {@code num_outputs} (18), RoiAlign keeps its output-half-pixel
 * coordinates (16), GridSample's modes take their new names (20) and DFT's axis becomes an input (20).
 *
 * <p>Every other operator must be known to mean the same at the new opset ({@link #UNCHANGED_SINCE},
 * {@link #INTRODUCED_AFTER_13}); any other fails with a message naming the node and its operator.
 * Subgraphs (If/Loop/Scan bodies) are upgraded the same way, with names drawn from the whole
 * model's {@link NameAuthority}. Custom-domain nodes pass through. A model that cannot be upgraded
 * yields an error and no partial result. Model-local functions are refused.
 */
public final class OpsetUpgrade implements Pass {
    public static final String NAME = "opset-upgrade";
    /** The default target: the first opset with per-channel QuantizeLinear/DequantizeLinear. */
    public static final long TARGET = 13;
    /** The highest target: every change up to it is handled below, and ONNX Runtime 1.29 runs it. */
    public static final long MAX_TARGET = 21;
    /** The lowest source opset. */
    public static final long MIN_SOURCE = 7;
    /** The lowest IR version that may import opset 13. */
    static final long MIN_IR_VERSION = 7;

    /**
     * Operator → the lowest source opset (at least 7) whose version of the operator means the same as
     * at opset 13 for every model valid at that opset. Operators introduced after 7 are listed from
     * the opset that introduced them. Changes that only widen the accepted types, allow broadcasting
     * where equal shapes were required, add optional outputs or allow negative axes/indices do not
     * count as changes (e.g. Cast, Gemm, MatMul, PRelu, Greater, Less at 9; Max/Min/Mean/Sum and
     * MaxPool at 8).
     */
    static final Map<String, Integer> UNCHANGED_SINCE = unchangedSince();

    /**
     * Operators ORT defines in the ONNX domain at every opset, which its graph optimizer writes into the graphs it
     * saves (an encoder optimized at ORT's extended level holds LayerNormalization at opset 11, years before ONNX
     * defined it at 17 with the same attributes and outputs): ORT runs them at any opset, so an upgrade keeps them.
     */
    static final java.util.Set<String> ORT_ONNX_DOMAIN = java.util.Set.of("LayerNormalization", "SimplifiedLayerNormalization");

    /** Operators introduced after 13 (up to {@link #MAX_TARGET}) → the opset that introduced them. */
    static final Map<String, Integer> INTRODUCED_AFTER_13 = introducedAfter13();

    /** Operators valid at 13 that the step to 13 rewrites from older forms. */
    private static final Set<String> REWRITTEN_TO_13 = Set.of("Squeeze", "Unsqueeze", "ReduceSum", "Split", "Softmax",
            "LogSoftmax", "Hardmax", "Dropout");

    /** Reduce operators whose {@code axes} attribute became an input at 18 (ReduceSum's did at 13). */
    private static final Set<String> REDUCE_AXES_AT_18 = Set.of("ReduceL1", "ReduceL2", "ReduceLogSum",
            "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare");

    private static Map<String, Integer> unchangedSince() {
        Map<String, Integer> m = new HashMap<>();
        for (String op : List.of("Abs", "Acos", "Add", "And", "ArgMax", "ArgMin", "Asin", "Atan", "AveragePool",
                "Cast", "Ceil", "Concat", "Constant", "Conv", "ConvTranspose", "Cos", "DepthToSpace", "Div", "Elu",
                "Equal", "Exp", "Flatten", "Floor", "GRU", "Gather", "Gemm", "GlobalAveragePool", "GlobalLpPool",
                "GlobalMaxPool", "Greater", "HardSigmoid", "Identity", "If", "InstanceNormalization", "LRN", "LSTM",
                "LeakyRelu", "Less", "Log", "Loop", "LpNormalization", "MatMul", "Max", "MaxPool", "MaxRoiPool",
                "Mean", "Min", "Mul", "Multinomial", "Neg", "Not", "Or", "PRelu", "Pow", "RandomNormal",
                "RandomNormalLike", "RandomUniform", "RandomUniformLike", "RNN", "Reciprocal", "ReduceL1", "ReduceL2",
                "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
                "ReduceSumSquare", "Relu", "Reshape", "Selu", "Shape", "Sigmoid", "Sin", "Size", "Softplus",
                "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "Tile", "Transpose", "Xor")) {
            m.put(op, 7);
        }
        m.put("Expand", 8);
        // Introduced at 9; BatchNormalization lost `spatial` and Scan its batch axis at 9 (both rewritten before).
        for (String op : List.of("Acosh", "Asinh", "Atanh", "BatchNormalization", "Compress", "ConstantOfShape",
                "Cosh", "Erf", "EyeLike", "IsNaN", "MeanVarianceNormalization", "NonZero", "OneHot", "Scan", "Shrink",
                "Sign", "Sinh", "TfIdfVectorizer", "Where")) {
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
        for (String op : List.of("Celu", "Einsum", "GreaterOrEqual", "LessOrEqual", "NegativeLogLikelihoodLoss",
                "SoftmaxCrossEntropyLoss")) {
            m.put(op, 12);
        }
        return Map.copyOf(m);
    }

    private static Map<String, Integer> introducedAfter13() {
        Map<String, Integer> m = new HashMap<>();
        for (String op : List.of("HardSwish", "Trilu")) {
            m.put(op, 14);
        }
        for (String op : List.of("Bernoulli", "CastLike", "Optional", "OptionalGetElement", "OptionalHasElement")) {
            m.put(op, 15);
        }
        m.put("GridSample", 16);
        for (String op : List.of("BlackmanWindow", "DFT", "HammingWindow", "HannWindow", "LayerNormalization",
                "MelWeightMatrix", "STFT", "SequenceMap")) {
            m.put(op, 17);
        }
        for (String op : List.of("BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "CenterCropPad", "Col2Im",
                "GroupNormalization", "Mish")) {
            m.put(op, 18);
        }
        m.put("DeformConv", 19);
        for (String op : List.of("AffineGrid", "Gelu", "ImageDecoder", "RegexFullMatch", "StringConcat", "StringSplit")) {
            m.put(op, 20);
        }
        return Map.copyOf(m);
    }

    private final long target;

    public OpsetUpgrade() {
        this(TARGET);
    }

    public OpsetUpgrade(long targetOpset) {
        this.target = checkTarget(targetOpset);
    }

    /** Returns the target opset when this pass can upgrade to it, else fails with a one-line reason. */
    public static long checkTarget(long targetOpset) {
        if (targetOpset < TARGET || targetOpset > MAX_TARGET) {
            throw new QwtException("the target opset must be between " + TARGET + " and " + MAX_TARGET + ", not "
                    + targetOpset);
        }
        return targetOpset;
    }

    /** The IR version an opset needs (the ONNX release that introduced the opset). */
    static long minIrVersion(long opset) {
        return opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : MIN_IR_VERSION;
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
        if (from < MIN_SOURCE) {
            throw new QwtException("cannot upgrade a model at opset " + from + " to " + target
                    + ": models below opset " + MIN_SOURCE + " are not supported");
        }
        if (model.proto().getFunctionsCount() > 0) {
            throw new QwtException("cannot upgrade a model with local functions from opset " + from + " to " + target);
        }
        NameAuthority names = new NameAuthority(model.graph());
        GraphProto graph = model.graph();
        if (from < TARGET) {
            graph = step(graph, names, from, TARGET);
        }
        if (target > TARGET) {
            graph = step(graph, names, Math.max(from, TARGET), target);
        }
        Model out = model.withGraph(graph).withDefaultOpset(target);
        if (out.proto().getIrVersion() < minIrVersion(target)) {
            out = out.withProto(out.proto().toBuilder().setIrVersion(minIrVersion(target)).build());
        }
        return PassResult.changed(out);
    }

    /** One step of the upgrade (to 13, or from 13 on) over one graph and, first, its subgraphs. */
    private GraphProto step(GraphProto graph, NameAuthority names, long from, long to) {
        GraphEditor g = new GraphEditor(graph, names);
        TensorFacts facts = TensorFacts.of(graph);
        List<Rewrite> plan = new ArrayList<>();
        for (NodeProto original : g.nodesSnapshot()) {
            NodeProto n = withUpgradedSubgraphs(g, original, names, from, to);
            if (!Model.isDefaultDomain(n.getDomain())) {
                continue; // custom-domain nodes pass through untouched (their subgraphs are upgraded)
            }
            Rewrite r = to == TARGET ? planTo13(g, facts, n, from) : planAfter13(g, n, from, to);
            if (r != null) {
                plan.add(r);
            }
        }
        for (Rewrite r : plan) {
            r.apply(g);
        }
        return g.build();
    }

    /**
     * The node with each graph attribute upgraded by the same step (a subgraph runs at the model's
     * opset); the node is replaced in the editor when anything changed. A refusal inside a subgraph
     * names the node that holds it.
     */
    private NodeProto withUpgradedSubgraphs(GraphEditor g, NodeProto n, NameAuthority names, long from, long to) {
        boolean hasGraphs = n.getAttributeList().stream().anyMatch(a -> a.hasG() || a.getGraphsCount() > 0);
        if (!hasGraphs) {
            return n;
        }
        NodeProto.Builder b = n.toBuilder();
        for (int i = 0; i < b.getAttributeCount(); i++) {
            AttributeProto a = b.getAttribute(i);
            try {
                if (a.hasG()) {
                    b.setAttribute(i, a.toBuilder().setG(step(a.getG(), names, from, to)));
                } else if (a.getGraphsCount() > 0) {
                    AttributeProto.Builder ab = a.toBuilder().clearGraphs();
                    for (GraphProto sub : a.getGraphsList()) {
                        ab.addGraphs(step(sub, names, from, to));
                    }
                    b.setAttribute(i, ab);
                }
            } catch (QwtException e) {
                throw new QwtException(e.getMessage() + " (in subgraph '" + a.getName() + "' of " + Nodes.describe(n) + ")");
            }
        }
        return g.replace(n, b.build());
    }

    private QwtException cannot(NodeProto n, long from, String why) {
        return new QwtException("cannot upgrade " + Nodes.describe(n) + " from opset " + from + " to " + target + ": " + why);
    }

    /** Checks one node for the step to 13 and returns its rewrite (null when it stays as it is); throws when it cannot be upgraded. */
    private Rewrite planTo13(GraphEditor g, TensorFacts facts, NodeProto n, long from) {
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
        if (from < 9 && op.equals("BatchNormalization")) {
            return batchNorm7(g, n, from);
        }
        if (from < 9 && op.equals("Scan")) {
            return scan8(n, from);
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
        if (ORT_ONNX_DOMAIN.contains(op)) {
            return null;
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

    /** True when the step from {@code from} to {@code to} passes opset {@code change}. */
    private static boolean crosses(long from, long to, long change) {
        return from < change && change <= to;
    }

    /** Checks one node (valid at opset {@code from} ≥ 13) for the step to {@code to}; see {@link #planTo13}. */
    private Rewrite planAfter13(GraphEditor g, NodeProto n, long from, long to) {
        String op = n.getOpType();
        if (crosses(from, to, 18) && REDUCE_AXES_AT_18.contains(op)) {
            return attrToInput(n, from, "axes");
        }
        if (crosses(from, to, 18) && op.equals("Split")) {
            return splitNumOutputs(n);
        }
        if (crosses(from, to, 16) && op.equals("RoiAlign") && Nodes.attr(n, "coordinate_transformation_mode").isEmpty()) {
            // RoiAlign-16 shifts input coordinates by -0.5 by default; before 16 it did not.
            return g2 -> g2.replace(n, Nodes.withAttr(n, Nodes.stringAttribute("coordinate_transformation_mode",
                    "output_half_pixel")));
        }
        if (crosses(from, to, 20) && op.equals("GridSample")) {
            String mode = Nodes.stringAttr(n, "mode", "bilinear");
            String renamed = switch (mode) {
                case "bilinear" -> "linear";
                case "bicubic" -> "cubic";
                default -> mode;
            };
            return g2 -> g2.replace(n, Nodes.withAttr(n, Nodes.stringAttribute("mode", renamed)));
        }
        if (crosses(from, to, 20) && op.equals("DFT")) {
            return dftAxis(n);
        }
        if (crosses(from, to, 21) && op.equals("GroupNormalization")) {
            throw cannot(n, from, "GroupNormalization-18 scales per group and -21 per channel; this is not rewritten");
        }
        if (crosses(from, to, 14) && op.equals("BatchNormalization") && n.getOutputCount() > 1) {
            // From 14 the extra outputs exist only in training mode: unread ones are dropped.
            for (int i = 1; i < n.getOutputCount(); i++) {
                if (!n.getOutput(i).isEmpty() && g.useCount(n.getOutput(i)) > 0) {
                    throw cannot(n, from, "its training-mode output '" + n.getOutput(i) + "' is read");
                }
            }
            return g2 -> g2.replace(n, n.toBuilder().clearOutput().addOutput(n.getOutput(0)).build());
        }
        Integer since = UNCHANGED_SINCE.containsKey(op) || REWRITTEN_TO_13.contains(op) ? Integer.valueOf((int) TARGET)
                : INTRODUCED_AFTER_13.get(op);
        if (since == null) {
            throw cannot(n, from, "the upgrader does not know operator " + op + " at opset " + from);
        }
        if (since > from) {
            throw cannot(n, from, op + " is not defined at opset " + from + " (from opset " + since + ")");
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
     * BatchNormalization before 9 had {@code spatial} (default 1, the only meaning kept at 9). A
     * non-spatial one normalises each element of C×D1×…×Dn with parameters of that shape: as ONNX
     * suggests, it becomes Flatten(x, 1) → BatchNormalization on the (N, C·D1⋯Dn) matrix with the
     * parameters flattened → Reshape to the input's shape. Training-mode outputs are refused.
     */
    private Rewrite batchNorm7(GraphEditor g, NodeProto n, long from) {
        for (int i = 1; i < n.getOutputCount(); i++) {
            if (!n.getOutput(i).isEmpty() && g.useCount(n.getOutput(i)) > 0) {
                throw cannot(n, from, "its training-mode output '" + n.getOutput(i) + "' is read");
            }
        }
        NodeProto bn = Nodes.withoutAttr(n, "spatial").toBuilder().clearOutput().addOutput(n.getOutput(0)).build();
        if (Nodes.intAttr(n, "spatial", 1) != 0) {
            return g2 -> g2.replace(n, bn);
        }
        if (n.getInputCount() != 5) {
            throw cannot(n, from, "BatchNormalization needs 5 inputs, it has " + n.getInputCount());
        }
        return g2 -> {
            String b = base(n);
            String x = n.getInput(0);
            String shape = g2.names().fresh(b + "_input_shape");
            String flat = g2.names().fresh(b + "_2d");
            String out2d = g2.names().fresh(b + "_2d_out");
            String minusOne = g2.names().fresh(b + "_flat_shape");
            g2.putInitializer(Tensors.int64Tensor(minusOne, new long[] {1}, new long[] {-1}));
            List<NodeProto> before = new ArrayList<>();
            before.add(Nodes.node("Shape", g2.names().fresh(b + "_shape"), List.of(x), List.of(shape), NAME));
            before.add(Nodes.node("Flatten", g2.names().fresh(b + "_flatten"), List.of(x), List.of(flat), NAME,
                    Nodes.intAttribute("axis", 1)));
            NodeProto.Builder op = bn.toBuilder().setInput(0, flat).setOutput(0, out2d);
            for (int i = 1; i < 5; i++) {
                String p = g2.names().fresh(n.getInput(i) + "_flat");
                before.add(Nodes.node("Reshape", g2.names().fresh(b + "_flatten_param"), List.of(n.getInput(i), minusOne),
                        List.of(p), NAME));
                op.setInput(i, p);
            }
            NodeProto reshape = Nodes.node("Reshape", g2.names().fresh(b + "_reshape"), List.of(out2d, shape),
                    List.of(n.getOutput(0)), NAME);
            g2.insertBefore(n, before.toArray(new NodeProto[0]));
            g2.insertAfter(n, reshape);
            g2.replace(n, op.build());
        };
    }

    /**
     * Scan-8 ran its body over a batch of sequences: an optional {@code sequence_lens} input, then
     * N states of shape [batch, …] and M scan inputs of shape [batch, sequence, …], with the body
     * seeing one batch element. From 9 Scan has no batch axis. The same computation is a Scan over
     * the batch (N + M scan inputs along axis 0, no states) whose body is one Scan-9 over the
     * sequence with the original body: its N final states and K scan outputs become the outer
     * scan outputs, stacked along the batch axis as Scan-8 returned them. Sequence lengths are
     * refused.
     */
    private Rewrite scan8(NodeProto n, long from) {
        if (n.getInputCount() > 0 && !n.getInput(0).isEmpty()) {
            throw cannot(n, from, "Scan-8 sequence_lens (one length per batch element) is not rewritten");
        }
        GraphProto body = Nodes.attr(n, "body").filter(AttributeProto::hasG)
                .orElseThrow(() -> cannot(n, from, "Scan has no body")).getG();
        long scanInputs = Nodes.intAttr(n, "num_scan_inputs", -1);
        int outerInputs = n.getInputCount() - 1;
        if (scanInputs < 1 || scanInputs > outerInputs || body.getInputCount() != outerInputs
                || body.getOutputCount() != n.getOutputCount()) {
            throw cannot(n, from, "its inputs, outputs and body do not agree");
        }
        var directions = Nodes.attr(n, "directions");
        return g -> {
            String b = base(n);
            List<String> slices = new ArrayList<>();
            List<ValueInfoProto> sliceInfos = new ArrayList<>();
            for (int i = 0; i < outerInputs; i++) {
                String s = g.names().fresh(n.getInput(i + 1) + "_batch_element");
                slices.add(s);
                sliceInfos.add(elementTypeOnly(s, body.getInput(i)));
            }
            List<String> results = new ArrayList<>();
            List<ValueInfoProto> resultInfos = new ArrayList<>();
            for (int i = 0; i < n.getOutputCount(); i++) {
                String r = g.names().fresh(n.getOutput(i) + "_batch_element");
                results.add(r);
                resultInfos.add(elementTypeOnly(r, body.getOutput(i)));
            }
            List<AttributeProto> innerAttrs = new ArrayList<>();
            innerAttrs.add(graphAttribute("body", body));
            innerAttrs.add(Nodes.intAttribute("num_scan_inputs", scanInputs));
            directions.ifPresent(d -> innerAttrs.add(d.toBuilder().setName("scan_input_directions").build()));
            NodeProto inner = Nodes.node("Scan", g.names().fresh(b + "_per_batch_element"), slices, results, NAME,
                    innerAttrs.toArray(new AttributeProto[0]));
            GraphProto batchBody = GraphProto.newBuilder().setName(g.names().fresh(body.getName() + "_over_batch"))
                    .addNode(inner).addAllInput(sliceInfos).addAllOutput(resultInfos).build();
            NodeProto outer = Nodes.node("Scan", n.getName(), n.getInputList().subList(1, n.getInputCount()),
                    n.getOutputList(), NAME, graphAttribute("body", batchBody),
                    Nodes.intAttribute("num_scan_inputs", outerInputs));
            g.replace(n, outer);
        };
    }

    private static AttributeProto graphAttribute(String name, GraphProto graph) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(graph).build();
    }

    /** A value info with the element type of {@code like} and no shape (the batch axis changes it). */
    private static ValueInfoProto elementTypeOnly(String name, ValueInfoProto like) {
        ValueInfoProto.Builder v = ValueInfoProto.newBuilder().setName(name);
        if (like.hasType() && like.getType().hasTensorType()) {
            v.setType(TypeProto.newBuilder().setTensorType(
                    TypeProto.Tensor.newBuilder().setElemType(like.getType().getTensorType().getElemType())));
        }
        return v.build();
    }

    /**
     * Split from 18 takes either sizes or {@code num_outputs}; one with neither (equal parts, one per
     * output, at 13) states {@code num_outputs} explicitly.
     */
    private static Rewrite splitNumOutputs(NodeProto n) {
        if (n.getInputCount() > 1 && !n.getInput(1).isEmpty()) {
            return null;
        }
        return g -> g.replace(n, Nodes.withAttr(n.toBuilder().clearInput().addInput(n.getInput(0)).build(),
                Nodes.intAttribute("num_outputs", n.getOutputCount())));
    }

    /** DFT-17's {@code axis} attribute (default 1) is DFT-20's optional scalar input (default −2). */
    private static Rewrite dftAxis(NodeProto n) {
        long axis = Nodes.intAttr(n, "axis", 1);
        return g -> {
            String name = g.names().fresh(base(n) + "_axis");
            g.putInitializer(Tensors.int64Tensor(name, new long[0], new long[] {axis}));
            NodeProto.Builder b = Nodes.withoutAttr(n, "axis").toBuilder().clearInput().addInput(n.getInput(0))
                    .addInput(n.getInputCount() > 1 ? n.getInput(1) : "").addInput(name);
            g.replace(n, b.build());
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
