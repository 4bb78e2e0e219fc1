package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds the layers to quantize (match), checks each one's preconditions (check) and records why a
 * candidate was rejected. It never changes the model.
 */
public final class LayerMatcher {
    /**
     * The outcome: the layers to quantize, a reason for every rejected candidate, and notes on how
     * the plan treats shared weights. Only the graph's own nodes are matched: layers inside If
     * branches and Loop/Scan bodies are planned where those are quantized (api/IfBranches, api/LoopBodies).
     */
    /**
     * @param joins the Add nodes, each with two non-constant inputs of which one is a planned
     *              layer's output (residual Adds), whose inputs get Q/DQ too: empty unless the
     *              target runs such an Add in low precision only when all its inputs are quantized
     */
    public record Result(List<LayerPlan> layers, List<Rejected> rejections, List<String> notes, List<NodeProto> joins) {
        public Result(List<LayerPlan> layers, List<Rejected> rejections, List<String> notes) {
            this(layers, rejections, notes, List.of());
        }

        /** Each rejected candidate as a person reads it: the node, then why. */
        public List<String> rejected() {
            return rejections.stream().map(Rejected::toString).toList();
        }

        /**
         * This plan with the layers named in {@code why} left in float for the reason given (a float
         * budget's choice, say): the other layers are planned exactly as before, so nothing is matched twice.
         */
        public Result keepingFloat(java.util.Map<String, Kept> why) {
            List<LayerPlan> kept = new ArrayList<>();
            List<Rejected> rejected = new ArrayList<>(rejections);
            for (LayerPlan l : layers) {
                Kept k = why.get(l.name());
                if (k != null) {
                    rejected.add(new Rejected(l.kind().opType + " node '" + l.name() + "'", k.reason(), k.why()));
                } else {
                    kept.add(l);
                }
            }
            java.util.Set<String> outputs = new java.util.HashSet<>();
            kept.forEach(l -> outputs.add(l.output()));
            List<NodeProto> keptJoins = joins.stream().filter(a -> outputs.contains(a.getInput(0))
                    || outputs.contains(a.getInput(1))).toList();
            return new Result(List.copyOf(kept), List.copyOf(rejected), sharedWeightNotes(kept), keptJoins);
        }

        /** The float tensors whose ranges calibration must measure. */
        public Set<String> tensorsToCalibrate() {
            Set<String> t = new LinkedHashSet<>();
            for (LayerPlan l : layers) {
                t.add(l.input());
                if (l.quantizeOutput()) {
                    t.add(l.outputRangeTensor());
                }
            }
            for (NodeProto a : joins) {
                t.add(a.getInput(0));
                t.add(a.getInput(1));
            }
            return t;
        }
    }

    /**
     * Why a candidate layer stays float, as the run acts on it: an all-float plan is an error for some
     * reasons and the plan's own choice for others, and the summary counts some of them.
     */
    public enum Reason {
        /** --keep-float names it. */
        ASKED,
        /** The target runs its operator in float only. */
        TARGET,
        /** Its form: inputs, attributes, a weight or bias that is not a constant of the expected shape. */
        FORM,
        /** Its weight is of an element type other than float32 and float16. */
        NOT_FLOAT32,
        /** Its weight is float16: a model computing in float16. */
        FLOAT16,
        /** Its output reaches a Log through magnitude operations ({@link LogInputs}). */
        LOG_INPUT,
        /** The cost model estimates it slower in int8 than in float ({@link CostModel}). */
        SLOWER,
        /** The accuracy target's search returned it to float. */
        ACCURACY_TARGET,
        /** --float-budget keeps it in float. */
        FLOAT_BUDGET
    }

    /** A candidate layer left in float: the node (as {@link Nodes#describe} names it), the kind of reason, and why. */
    public record Rejected(String node, Reason reason, String why) {
        @Override
        public String toString() {
            return node + ": " + why;
        }
    }

    /** Why a planned layer is to be kept in float after all ({@link Result#keepingFloat}). */
    public record Kept(Reason reason, String why) {
    }

    /**
     * Why a layer whose output reaches a {@code Log} through magnitude operations stays float ({@link LogInputs}); the
     * Log node's name goes in.
     */
    public static final String LOG_INPUT = "its output reaches Log node '%s' through magnitude operations, and a log "
            + "turns an int8 grid's error on small values into a large one (--quantize-log-inputs quantizes it)";

    /** Why a layer whose weight is of another element type stays as it is. */
    private static final String NOT_FLOAT32 = "its weight is not float32";

    private LayerMatcher() {
    }

    public static Result match(Model model, QuantOptions options) {
        GraphEditor g = new GraphEditor(model.graph());
        List<LayerPlan> layers = new ArrayList<>();
        List<Rejected> rejected = new ArrayList<>();
        java.util.Map<String, String> logFed = options.quantizeLogInputs() ? java.util.Map.of() : LogInputs.layers(g);
        for (NodeProto n : g.nodes()) {
            LayerKind kind = LayerKind.of(n.getOpType());
            if (kind == null || !Model.isDefaultDomain(n.getDomain())) {
                continue;
            }
            Kept why = options.keepFloat().contains(n.getName()) ? new Kept(Reason.ASKED, "kept in float as asked")
                    : !options.target().quantizes(kind.opType) ? new Kept(Reason.TARGET, "target "
                            + options.target().name() + " runs " + kind.opType + " in float only")
                    : check(kind, n, g);
            if (why == null && logFed.containsKey(n.getName())) {
                why = new Kept(Reason.LOG_INPUT, String.format(LOG_INPUT, logFed.get(n.getName())));
            }
            if (why != null) {
                rejected.add(new Rejected(Nodes.describe(n), why.reason(), why.why()));
                continue;
            }
            layers.add(plan(kind, n, g, options));
        }
        return new Result(layers, List.copyOf(rejected), sharedWeightNotes(layers),
                options.target().addInputs() ? joins(g, layers) : List.of());
    }

    /** The Adds of two non-constant inputs that read a planned layer's output (see {@link Result#joins}). */
    private static List<NodeProto> joins(GraphEditor g, List<LayerPlan> layers) {
        java.util.Set<String> outputs = new java.util.HashSet<>();
        for (LayerPlan l : layers) {
            outputs.add(l.output());
        }
        List<NodeProto> joins = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (n.getOpType().equals("Add") && Model.isDefaultDomain(n.getDomain()) && n.getInputCount() == 2
                    && (outputs.contains(n.getInput(0)) || outputs.contains(n.getInput(1)))
                    && g.initializer(n.getInput(0)) == null && g.initializer(n.getInput(1)) == null
                    && !isConstantOutput(g, n.getInput(0)) && !isConstantOutput(g, n.getInput(1))) {
                joins.add(n);
            }
        }
        return List.copyOf(joins);
    }

    private static boolean isConstantOutput(GraphEditor g, String tensor) {
        NodeProto p = g.producer(tensor);
        return p != null && p.getOpType().equals("Constant");
    }

    /**
     * A weight read by several planned layers: each layer gets its own weight scales and bias (the
     * quantizer writes them per layer), so compensation fits and folds each layer on its own.
     */
    private static List<String> sharedWeightNotes(List<LayerPlan> layers) {
        java.util.Map<String, List<String>> readers = new java.util.LinkedHashMap<>();
        for (LayerPlan l : layers) {
            readers.computeIfAbsent(l.weight(), k -> new ArrayList<>()).add(l.name());
        }
        List<String> notes = new ArrayList<>();
        readers.forEach((w, names) -> {
            if (names.size() > 1) {
                notes.add("weight '" + w + "' is shared by " + names.size() + " layers (" + String.join(", ", names)
                        + "): each gets its own quantized copy, scales and bias, compensated on its own");
            }
        });
        return notes;
    }

    /** Why the layer cannot be quantized as it is (null when it can). */
    private static Kept check(LayerKind kind, NodeProto n, GraphEditor g) {
        if (n.getInputCount() < 2 || n.getOutputCount() != 1) {
            return form("unexpected number of inputs or outputs");
        }
        String x = n.getInput(0);
        if (g.isInitializer(x)) {
            // W·x (a constant first input) would need its channels along rows, which ORT's integer MatMul
            // takes only per tensor; x·W and Gemm's transposed forms are what exporters write for a layer.
            return form(g.initializer(n.getInput(1)) == null
                    ? "its constant is the first input (W·x; layers of the form x·W are quantized)"
                    : "both inputs are constants");
        }
        TensorProto w = g.initializer(n.getInput(1));
        if (w == null) {
            return form("its weight is not a constant");
        }
        if (w.getDataType() == TensorProto.DataType.FLOAT16_VALUE) {
            return new Kept(Reason.FLOAT16, NOT_FLOAT32 + " (float16)");
        }
        if (w.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            return new Kept(Reason.NOT_FLOAT32, NOT_FLOAT32);
        }
        String bias = n.getInputCount() > 2 ? n.getInput(2) : "";
        switch (kind) {
            case CONV -> {
                if (w.getDimsCount() < 3) {
                    return form("weight rank " + w.getDimsCount() + " is below 3");
                }
                if (!bias.isEmpty() && !isVector(g.initializer(bias), w.getDims(0))) {
                    return form("its bias is not a constant vector of " + w.getDims(0));
                }
            }
            case MATMUL -> {
                if (w.getDimsCount() != 2) {
                    return form("weight rank " + w.getDimsCount() + " is not 2");
                }
            }
            case GEMM -> {
                if (w.getDimsCount() != 2) {
                    return form("weight rank " + w.getDimsCount() + " is not 2");
                }
                if (Nodes.intAttr(n, "transA", 0) != 0) {
                    return form("transA=1 is not supported");
                }
                if (Nodes.floatAttr(n, "alpha", 1f) != 1f) {
                    return form("alpha is not 1");
                }
                long channels = w.getDims(LayerKind.GEMM.weightAxis(n));
                if (!bias.isEmpty()) {
                    if (Nodes.floatAttr(n, "beta", 1f) != 1f) {
                        return form("beta is not 1");
                    }
                    if (!isVector(g.initializer(bias), channels)) {
                        return form("its bias is not a constant vector of " + channels);
                    }
                }
            }
        }
        return null;
    }

    private static Kept form(String why) {
        return new Kept(Reason.FORM, why);
    }

    /** A bias Add: the node, and the name of its constant input. */
    public record BiasAdd(NodeProto add, String constant) {
    }

    /**
     * The Add that alone reads {@code tensor} (not a graph output) and adds a float constant of
     * {@code channels} values along its last axis: a MatMul's bias. Null when there is none.
     */
    public static BiasAdd biasAdd(GraphEditor g, String tensor, long channels) {
        List<NodeProto> readers = g.isGraphOutput(tensor) ? List.of() : g.consumers(tensor);
        if (readers.size() != 1) {
            return null;
        }
        NodeProto add = readers.get(0);
        if (!add.getOpType().equals("Add") || !Model.isDefaultDomain(add.getDomain()) || add.getInputCount() != 2) {
            return null;
        }
        String other = add.getInput(0).equals(tensor) ? add.getInput(1) : add.getInput(0);
        return !other.equals(tensor) && isVector(g.initializer(other), channels) ? new BiasAdd(add, other) : null;
    }

    /** A bias Add reading an int32 bias through a DequantizeLinear: the Add and that DequantizeLinear. */
    public record Int32BiasAdd(NodeProto add, NodeProto dq) {
    }

    /**
     * The Add that alone reads {@code tensor} (not a graph output) and adds a DequantizeLinear of a
     * constant int32 tensor of {@code channels} values along its last axis (leading axes of 1), with
     * one scale per value, a zero zero point and the axis of those values: a MatMul's bias in the
     * form {@link Int32MatMulBias} writes. Null when there is none.
     */
    public static Int32BiasAdd int32BiasAdd(GraphEditor g, String tensor, long channels) {
        List<NodeProto> readers = g.isGraphOutput(tensor) ? List.of() : g.consumers(tensor);
        NodeProto add = readers.size() == 1 ? readers.get(0) : null;
        if (add == null || !add.getOpType().equals("Add") || !Model.isDefaultDomain(add.getDomain())
                || add.getInputCount() != 2 || add.getInput(0).equals(add.getInput(1))) {
            return null;
        }
        NodeProto dq = g.producer(add.getInput(0).equals(tensor) ? add.getInput(1) : add.getInput(0));
        if (dq == null || !dq.getOpType().equals("DequantizeLinear") || !Model.isDefaultDomain(dq.getDomain())
                || dq.getInputCount() < 2) {
            return null;
        }
        TensorProto q = g.initializer(dq.getInput(0));
        TensorProto s = g.initializer(dq.getInput(1));
        boolean hasZp = dq.getInputCount() > 2 && !dq.getInput(2).isEmpty();
        TensorProto zp = hasZp ? g.initializer(dq.getInput(2)) : null;
        if (!isVector(q, TensorProto.DataType.INT32_VALUE, channels) || s == null || Tensors.floats(s).length != channels
                || (hasZp && (zp == null || java.util.Arrays.stream(Tensors.longs(zp)).anyMatch(v -> v != 0)))) {
            return null;
        }
        long axis = Nodes.intAttr(dq, "axis", 1);
        return axis == q.getDimsCount() - 1 || axis == -1 ? new Int32BiasAdd(add, dq) : null;
    }

    /** A float constant holding exactly {@code n} values along its last axis (leading axes of 1). */
    static boolean isVector(TensorProto t, long n) {
        return isVector(t, TensorProto.DataType.FLOAT_VALUE, n);
    }

    /** A constant of element type {@code type} holding exactly {@code n} values along its last axis (leading axes of 1). */
    private static boolean isVector(TensorProto t, int type, long n) {
        if (t == null || t.getDataType() != type || t.getDimsCount() == 0) {
            return false;
        }
        long[] d = Tensors.dims(t);
        for (int i = 0; i < d.length - 1; i++) {
            if (d[i] != 1) {
                return false;
            }
        }
        return d[d.length - 1] == n;
    }

    private static LayerPlan plan(LayerKind kind, NodeProto n, GraphEditor g, QuantOptions options) {
        TensorProto w = g.initializer(n.getInput(1));
        int axis = kind.weightAxis(n);
        int channels = Math.toIntExact(w.getDims(axis));
        String bias = kind != LayerKind.MATMUL && n.getInputCount() > 2 && !n.getInput(2).isEmpty() ? n.getInput(2) : null;
        String output = n.getOutput(0);
        NodeProto biasAdd = null;
        String biasConst = null;
        BiasAdd found = kind == LayerKind.MATMUL ? biasAdd(g, output, channels) : null;
        if (found != null) {
            biasAdd = found.add();
            biasConst = found.constant();
            output = biasAdd.getOutput(0);
        }
        boolean quantizeOutput = options.outputQuantized().contains(kind);
        // A target that quantizes every op's output (QNN, NNAPI) wants the MatMul's own output
        // through the Q, as its rule checker reads it: the bias Add is an op of its own there.
        boolean qBeforeBias = quantizeOutput && biasAdd != null && options.target().outputQuantized().contains(kind.opType);
        NodeProto relu = null;
        // A following Relu is absorbed into the output Q's clamp at its zero point, which an
        // asymmetric grid over [0, max] puts at the bottom; a symmetric grid keeps negatives.
        if (quantizeOutput && !qBeforeBias && !options.target().activations().symmetric() && !g.isGraphOutput(output)) {
            List<NodeProto> readers = g.consumers(output);
            if (readers.size() == 1 && readers.get(0).getOpType().equals("Relu")
                    && Model.isDefaultDomain(readers.get(0).getDomain())) {
                relu = readers.get(0);
            }
        }
        return new LayerPlan(kind, n, n.getInput(0), n.getInput(1), axis, bias, biasAdd, biasConst, output, channels,
                quantizeOutput, relu, qBeforeBias);
    }
}
