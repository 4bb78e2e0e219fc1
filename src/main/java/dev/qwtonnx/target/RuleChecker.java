package dev.qwtonnx.target;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Checks a quantized model (QDQ, any tool's) against a target's rules ({@link TargetRules}) and
 * returns every node that breaks one, naming the rule and its source. Reads the model only.
 */
public final class RuleChecker {
    private static final Set<String> WEIGHTED = Set.of("Conv", "ConvTranspose", "MatMul", "Gemm");
    private static final Set<String> WITH_BIAS = Set.of("Conv", "ConvTranspose", "Gemm");
    /** QOperator layers and the float op each computes. */
    private static final Map<String, String> QOPERATOR = Map.of("QLinearConv", "Conv", "QLinearMatMul", "MatMul");
    private static final Set<String> CONTROL_FLOW = Set.of("If", "Loop", "Scan");
    private static final String MS = dev.qwtonnx.model.Model.MICROSOFT_DOMAIN;
    private static final String MODEL = "(model)";

    private RuleChecker() {
    }

    /** The rules of {@code target}, in the order the checker reports them. */
    public static List<Rule> rules(Target target) {
        return TargetRules.of(target).list();
    }

    /** Every violation of {@code target}'s rules in {@code model} (its subgraphs included), in graph order. */
    public static List<Violation> check(Model model, Target target) {
        return new Run(model, TargetRules.of(target)).check();
    }

    private static final class Run {
        private final Model model;
        private final TargetRules rules;
        private final Target target;
        private final Map<String, TensorProto> inits = new HashMap<>();
        private final Map<String, NodeProto> producers = new HashMap<>();
        private final Map<String, List<NodeProto>> consumers = new HashMap<>();
        private final Map<String, Integer> valueTypes = new HashMap<>();
        private final List<NodeProto> nodes = new ArrayList<>();
        private final List<Violation> out = new ArrayList<>();

        Run(Model model, TargetRules rules) {
            this.model = model;
            this.rules = rules;
            this.target = rules.target;
            // One index over all graphs: names are unique across a model, and a subgraph reads
            // its enclosing graphs' tensors by name.
            Subgraphs.forEachGraph(model.graph(), g -> {
                for (TensorProto t : g.getInitializerList()) {
                    inits.put(t.getName(), t);
                }
                for (ValueInfoProto v : concat(g)) {
                    if (v.getType().hasTensorType()) {
                        valueTypes.put(v.getName(), v.getType().getTensorType().getElemType());
                    }
                }
            });
            Subgraphs.forEachNode(model.graph(), n -> {
                nodes.add(n);
                for (String o : n.getOutputList()) {
                    if (!o.isEmpty()) {
                        producers.put(o, n);
                    }
                }
                for (String i : n.getInputList()) {
                    if (!i.isEmpty()) {
                        consumers.computeIfAbsent(i, k -> new ArrayList<>()).add(n);
                    }
                }
            });
        }

        private static List<ValueInfoProto> concat(GraphProto g) {
            List<ValueInfoProto> all = new ArrayList<>(g.getInputList());
            all.addAll(g.getOutputList());
            all.addAll(g.getValueInfoList());
            return all;
        }

        List<Violation> check() {
            modelWide();
            boolean quantized = nodes.stream().anyMatch(n -> isQ(n) || isDq(n));
            for (NodeProto n : nodes) {
                domainAndFlow(n);
                if (isQ(n) || isDq(n)) {
                    qdq(n);
                } else if (WEIGHTED.contains(n.getOpType()) && Model.isDefaultDomain(n.getDomain())) {
                    weighted(n);
                } else if (QOPERATOR.containsKey(n.getOpType()) && Model.isDefaultDomain(n.getDomain())) {
                    qoperator(n);
                } else if (quantized && n.getOpType().equals("Add") && Model.isDefaultDomain(n.getDomain())) {
                    residualAdd(n);
                }
            }
            return List.copyOf(out);
        }

        private void report(NodeProto n, String ruleId, String detail) {
            Rule r = rules.rule(ruleId);
            if (r != null) {
                out.add(new Violation(n.getName().isEmpty() ? Nodes.describe(n) : n.getName(), n.getOpType(), r,
                        detail));
            }
        }

        // ---- model-wide: opset, graph inputs ----

        private void modelWide() {
            long opset = model.opsetVersion(Model.DEFAULT_DOMAIN);
            Rule r = rules.rule(TargetRules.OPSET);
            if (r != null && opset < target.minOpset()) {
                out.add(new Violation(MODEL, "model", r, "the model imports default-domain opset " + opset + ", the "
                        + "target needs " + target.minOpset()));
            }
            Rule dyn = rules.rule(TargetRules.DYNAMIC_SHAPE);
            if (dyn == null) {
                return;
            }
            for (ValueInfoProto v : model.graph().getInputList()) {
                if (inits.containsKey(v.getName()) || !v.getType().hasTensorType()) {
                    continue;
                }
                if (!v.getType().getTensorType().hasShape()) {
                    out.add(new Violation(v.getName(), "input", dyn, "the input's shape is not stated"));
                    continue;
                }
                List<String> free = new ArrayList<>();
                List<TensorShapeProto.Dimension> dims = v.getType().getTensorType().getShape().getDimList();
                for (int i = 0; i < dims.size(); i++) {
                    if (!dims.get(i).hasDimValue() || dims.get(i).getDimValue() <= 0) {
                        free.add(i + (dims.get(i).getDimParam().isEmpty() ? "" : " (" + dims.get(i).getDimParam() + ")"));
                    }
                }
                if (!free.isEmpty()) {
                    out.add(new Violation(v.getName(), "input", dyn, "dynamic dimension " + String.join(", ", free)));
                }
            }
        }

        // ---- per node: domain, control flow ----

        private void domainAndFlow(NodeProto n) {
            if (n.getDomain().equals(MS) && !target.microsoftDomain()
                    && !(rules.microsoftQdq && (isQ(n) || isDq(n)))) {
                report(n, TargetRules.MICROSOFT_DOMAIN, "com.microsoft " + n.getOpType()
                        + " is not an operator this target runs");
            }
            if (CONTROL_FLOW.contains(n.getOpType()) && Model.isDefaultDomain(n.getDomain())) {
                report(n, TargetRules.SUBGRAPH, n.getOpType() + " is not taken by this target");
            }
        }

        // ---- Q/DQ: activation type and zero point, 16-bit opset ----

        private void qdq(NodeProto n) {
            if (n.getInputCount() < 2) {
                return; // not a well-formed Q/DQ; the model checker reports it
            }
            DataType type = isQ(n) ? qOutputType(n) : inputType(n);
            if (type == null) {
                return;
            }
            boolean sixteen = type == DataType.UINT16 || type == DataType.INT16;
            if (sixteen && Model.isDefaultDomain(n.getDomain()) && model.opsetVersion(Model.DEFAULT_DOMAIN) < 21) {
                report(n, TargetRules.Q16_OPSET, lower(type) + " " + n.getOpType() + " in the default domain at opset "
                        + model.opsetVersion(Model.DEFAULT_DOMAIN));
            }
            // Activations: a Q of a computed tensor (its DQ is checked through it), or a DQ of a
            // graph input that arrives quantized.
            boolean activation = isQ(n) ? !isConstant(n.getInput(0))
                    : !isConstant(n.getInput(0)) && !isQ(producers.get(n.getInput(0)));
            if (!activation) {
                return;
            }
            if (!rules.activationTypes.contains(type)) {
                report(n, TargetRules.ACTIVATION_TYPE, "activation quantized to " + lower(type) + ", the target takes "
                        + namesOf(rules.activationTypes));
                return; // its zero point is moot: the type is already wrong
            }
            if (target.activations().symmetric()) {
                long[] zp = zeroPoints(n);
                long want = type == DataType.UINT8 ? 128 : type == DataType.UINT16 ? 32768 : 0;
                for (long z : zp) {
                    if (z != want) {
                        report(n, TargetRules.ACTIVATION_ZERO_POINT, "zero point " + z + ", symmetric " + lower(type)
                                + " needs " + want);
                        break;
                    }
                }
            }
        }

        // ---- weighted ops: pairs, per-channel, range, bias, output ----

        private void weighted(NodeProto n) {
            if (n.getInputCount() < 2) {
                return;
            }
            NodeProto wDq = producers.get(n.getInput(1));
            if (!isDq(wDq) || wDq.getInputCount() < 2 || !isConstant(wDq.getInput(0))) {
                return; // not a quantized weight: a float op, nothing to check
            }
            String op = n.getOpType();
            DataType w = inputType(wDq);
            NodeProto xDq = producers.get(n.getInput(0));
            DataType x = isDq(xDq) && xDq.getInputCount() >= 2 ? inputType(xDq) : null;
            long[] wZp = zeroPoints(wDq);
            if (x == null) {
                report(n, TargetRules.WEIGHTED_INPUTS, "the weight goes through a DequantizeLinear but input 0 does "
                        + "not: the op runs in float");
            }
            weightForm(n, op, x, w, n.getInput(1), wDq.getInput(0), wDq.getInput(1), Nodes.intAttr(wDq, "axis", 1), wZp);
            if (WITH_BIAS.contains(op) && n.getInputCount() > 2 && !n.getInput(2).isEmpty() && x != null) {
                bias(n, xDq, wDq);
            }
            if (x != null && target.outputQuantized().contains(op) && !outputQuantized(n.getOutput(0))) {
                report(n, TargetRules.OUTPUT_QUANTIZED, "output " + n.getOutput(0)
                        + " is left float; the target wants it through a QuantizeLinear");
            }
        }

        private void providerPairs(NodeProto n, String op, DataType x, DataType w, boolean perChannel,
                boolean wZpZero) {
            switch (target.name()) {
                case "xnnpack" -> {
                    if (x != DataType.UINT8 && x != DataType.INT8) {
                        return; // no activation Q, or a 16-bit one: other rules say so
                    }
                    if (op.equals("MatMul") || op.equals("Gemm")) {
                        report(n, TargetRules.XNNPACK_QDQ_MATMUL, "quantized " + op + " (" + lower(x) + "·" + lower(w)
                                + ") runs on ORT's CPU provider, not XNNPACK");
                        return;
                    }
                    if (x != w) {
                        report(n, TargetRules.XNNPACK_U8S8, lower(x) + " activations with " + lower(w) + " weights");
                    } else if (perChannel && (w != DataType.INT8 || x != DataType.INT8 || !wZpZero
                            || op.equals("ConvTranspose"))) {
                        report(n, TargetRules.XNNPACK_PER_CHANNEL, "per-channel " + lower(w) + " weights"
                                + (wZpZero ? "" : " with non-zero zero points") + " with " + lower(x) + " activations on "
                                + op);
                    }
                }
                case "nnapi" -> {
                    if (w == DataType.INT8 && !wZpZero) {
                        report(n, TargetRules.NNAPI_WEIGHT_ZERO_POINT, "s8 weight with non-zero zero points");
                    }
                }
                case "tensorrt" -> {
                    if (w != DataType.INT8 || !wZpZero) {
                        report(n, TargetRules.TENSORRT_WEIGHT_SYMMETRIC, lower(w) + " weight"
                                + (wZpZero ? "" : " with non-zero zero points"));
                    }
                }
                default -> {
                }
            }
        }

        /**
         * A layer in QOperator form, QLinearConv or QLinearMatMul (x, x_scale, x_zp, w, w_scale, w_zp, …): the
         * same type, grid and pair rules as its QDQ form, read from the operator's own inputs. (The
         * com.microsoft forms, QGemm and MatMulIntegerToFloat, are the microsoft-domain rule's.)
         */
        private void qoperator(NodeProto n) {
            if (n.getInputCount() < 6 || !isConstant(n.getInput(3))) {
                return;
            }
            String op = QOPERATOR.get(n.getOpType());
            DataType x = zeroPointType(n.getInput(2));
            DataType w = known(inits.get(n.getInput(3)).getDataType());
            if (x == null || w == null) {
                return;
            }
            // QLinearConv's output channels are axis 0 of its weight, QLinearMatMul's the last (axis 1).
            weightForm(n, op, x, w, n.getInput(3), n.getInput(3), n.getInput(4), op.equals("Conv") ? 0 : 1,
                    integers(n.getInput(5)));
        }

        /**
         * The rules on a quantized layer's weight and activation types, whichever form writes them:
         * per-channel scales, QNN's per-channel axis, the weight grid, s8 activations, the provider's
         * type pairs. {@code x} is null where the activation is not quantized; {@code read} is the
         * weight as the layer reads it (named in messages), {@code weight} its integer constant.
         */
        private void weightForm(NodeProto n, String op, DataType x, DataType w, String read, String weight, String scale,
                long axis, long[] wZp) {
            long scales = numel(dims(scale));
            boolean perChannel = scales > 1;
            if (perChannel && !target.perChannel(op) && !rules.perChannelAlsoTaken.contains(op)) {
                report(n, TargetRules.WEIGHT_PER_CHANNEL, "weight " + read + " has " + scales
                        + " scales (per-channel); the target takes one per tensor on " + op);
            }
            if (perChannel) {
                long want = op.equals("ConvTranspose") ? 1 : 0;
                if ((op.equals("Conv") || op.equals("ConvTranspose")) && axis != want) {
                    report(n, TargetRules.QNN_PER_CHANNEL_AXIS, op + " weight quantized per channel on axis " + axis
                            + ", QNN takes axis " + want);
                }
            }
            if (rules.checkWeightRange && w == DataType.INT8) {
                weightRange(n, weight, axis, wZp);
            }
            if (x == DataType.INT8 && w != DataType.INT8) {
                report(n, TargetRules.CPU_S8_ACTIVATION, "s8 activations with " + lower(w) + " weights");
            }
            providerPairs(n, op, x, w, perChannel, allZero(wZp));
        }

        /** The type of a zero point (a constant, or a typed value), or null. */
        private DataType zeroPointType(String name) {
            TensorProto z = inits.get(name);
            if (z != null) {
                return known(z.getDataType());
            }
            Integer vt = valueTypes.get(name);
            return vt == null ? null : known(vt);
        }

        private void weightRange(NodeProto n, String weight, long axis, long[] zp) {
            TensorProto wt = inits.get(weight);
            long[] q = Tensors.toHost(wt).toLongs();
            int qmax = target.weights().qmax();
            long[] d = Tensors.dims(wt);
            int ax = (int) (axis < 0 ? axis + d.length : axis);
            long inner = 1;
            for (int i = ax + 1; i < d.length; i++) {
                inner *= d[i];
            }
            long channels = zp.length > 1 && ax < d.length ? d[ax] : 1;
            int beyond = 0;
            long worst = 0;
            for (int i = 0; i < q.length; i++) {
                long z = zp.length == 0 ? 0 : zp.length == 1 ? zp[0] : zp[(int) ((i / inner) % channels)];
                long m = Math.abs(q[i] - z);
                if (m > qmax) {
                    beyond++;
                    worst = Math.max(worst, m);
                }
            }
            if (beyond > 0) {
                report(n, TargetRules.WEIGHT_RANGE, beyond + " of " + q.length + " weight values beyond ±" + qmax
                        + " (up to " + worst + ")");
            }
        }

        private void bias(NodeProto n, NodeProto xDq, NodeProto wDq) {
            String b = n.getInput(2);
            NodeProto bDq = producers.get(b);
            boolean int32 = isDq(bDq) && bDq.getInputCount() >= 2 && isConstant(bDq.getInput(0))
                    && inputType(bDq) == DataType.INT32;
            if (target.bias() == Target.Bias.FLOAT) {
                if (int32) {
                    report(n, TargetRules.BIAS_FORM, "bias " + b + " is int32 through a DequantizeLinear");
                }
                return;
            }
            if (!int32) {
                report(n, TargetRules.BIAS_FORM, "bias " + b + " is " + (isDq(bDq) && bDq.getInputCount() > 0
                        ? lower(inputType(bDq))
                        + " through a DequantizeLinear" : "float") + "; the quantized op wants an int32 bias");
                return;
            }
            float[] xs = floatsOf(xDq.getInput(1));
            float[] ws = floatsOf(wDq.getInput(1));
            float[] bs = floatsOf(bDq.getInput(1));
            long[] bz = zeroPoints(bDq);
            if (xs == null || ws == null || bs == null || xs.length != 1) {
                return;
            }
            int c = Math.max(ws.length, bs.length);
            for (int i = 0; i < c; i++) {
                double want = (double) xs[0] * ws[ws.length == 1 ? 0 : i % ws.length];
                double got = bs[bs.length == 1 ? 0 : i % bs.length];
                if (Math.abs(got - want) > 1e-5 * Math.abs(want) + 1e-30) {
                    report(n, TargetRules.BIAS_SCALE, String.format(Locale.ROOT,
                            "bias scale %.6g at channel %d, x_scale·w_scale is %.6g", got, i, want));
                    return;
                }
            }
            if (!allZero(bz)) {
                report(n, TargetRules.BIAS_SCALE, "bias zero point is not 0");
            }
        }

        /** Whether every reader of {@code t} is a QuantizeLinear, or a Relu/Clip whose every reader is. */
        private boolean outputQuantized(String t) {
            List<NodeProto> cs = consumers.getOrDefault(t, List.of());
            if (cs.isEmpty()) {
                return false;
            }
            for (NodeProto c : cs) {
                if (isQ(c)) {
                    continue;
                }
                if ((c.getOpType().equals("Relu") || c.getOpType().equals("Clip")) && cs.size() == 1
                        && !consumers.getOrDefault(c.getOutput(0), List.of()).isEmpty()
                        && consumers.get(c.getOutput(0)).stream().allMatch(RuleChecker::isQ)) {
                    continue;
                }
                return false;
            }
            return true;
        }

        // ---- residual Adds ----

        private void residualAdd(NodeProto n) {
            if (n.getInputCount() != 2 || isConstant(n.getInput(0)) || isConstant(n.getInput(1))
                    || isInteger(n.getInput(0), 0) || isInteger(n.getInput(1), 0)) {
                return;
            }
            // A residual: a weighted layer's output (through its bias Add or output Q/DQ) added to another
            // branch; an Add of two embeddings or of attention scores and a mask fuses with no layer.
            if (!fromWeightedLayer(n.getInput(0), 4) && !fromWeightedLayer(n.getInput(1), 4)) {
                return;
            }
            List<String> floats = new ArrayList<>();
            for (String in : n.getInputList()) {
                if (!isDq(producers.get(in))) {
                    floats.add(in);
                }
            }
            if (!floats.isEmpty()) {
                report(n, TargetRules.RESIDUAL_ADD, "input " + String.join(" and ", floats)
                        + " not through a DequantizeLinear");
            }
        }

        /** Whether {@code tensor} is a Conv/ConvTranspose/MatMul/Gemm output, seen through up to {@code hops} DequantizeLinear, QuantizeLinear or bias Add nodes. */
        private boolean fromWeightedLayer(String tensor, int hops) {
            NodeProto p = producers.get(tensor);
            if (p == null || hops < 0) {
                return false;
            }
            switch (p.getOpType()) {
                case "Conv", "ConvTranspose", "MatMul", "Gemm":
                    return true;
                case "DequantizeLinear", "QuantizeLinear":
                    return fromWeightedLayer(p.getInput(0), hops - 1);
                case "Add":
                    if (p.getInputCount() == 2 && isConstant(p.getInput(1))) {
                        return fromWeightedLayer(p.getInput(0), hops - 1);
                    }
                    if (p.getInputCount() == 2 && isConstant(p.getInput(0))) {
                        return fromWeightedLayer(p.getInput(1), hops - 1);
                    }
                    return false;
                default:
                    return false;
            }
        }

        // ---- tensor facts ----

        private static final Set<String> INTEGER_SOURCES = Set.of("Shape", "Size", "NonZero", "ArgMax", "ArgMin");
        private static final Set<String> INTEGER_PASSING = Set.of("Gather", "Slice", "Concat", "Unsqueeze", "Squeeze",
                "Add", "Sub", "Mul", "Div", "Reshape", "Range", "Expand", "Equal", "Where");

        /** Whether {@code name} is an integer tensor (shape arithmetic), by its type or where it comes from. */
        private boolean isInteger(String name, int depth) {
            Integer vt = valueTypes.get(name);
            TensorProto t = inits.get(name);
            int code = t != null ? t.getDataType() : vt != null ? vt : 0;
            if (code != 0) {
                return code == DataType.INT64.code || code == DataType.INT32.code || code == DataType.BOOL.code;
            }
            NodeProto p = producers.get(name);
            if (p == null || depth > 8) {
                return false;
            }
            if (INTEGER_SOURCES.contains(p.getOpType())) {
                return true;
            }
            if (p.getOpType().equals("Cast")) {
                long to = Nodes.intAttr(p, "to", 0);
                return to == DataType.INT64.code || to == DataType.INT32.code;
            }
            if (p.getOpType().equals("Constant")) {
                return Nodes.attr(p, "value").map(a -> a.getT().getDataType() == DataType.INT64.code).orElse(false);
            }
            return INTEGER_PASSING.contains(p.getOpType()) && p.getInputCount() > 0
                    && isInteger(p.getInput(0), depth + 1);
        }

        private boolean isConstant(String name) {
            if (inits.containsKey(name)) {
                return true;
            }
            NodeProto p = producers.get(name);
            return p != null && p.getOpType().equals("Constant");
        }

        /** The element type of a Q/DQ's input 0 (a DQ's quantized type). */
        private DataType inputType(NodeProto n) {
            String in = n.getInput(0);
            TensorProto t = inits.get(in);
            if (t != null) {
                return known(t.getDataType());
            }
            NodeProto p = producers.get(in);
            if (isQ(p)) {
                return qOutputType(p);
            }
            Integer vt = valueTypes.get(in);
            return vt == null ? null : known(vt);
        }

        /** A QuantizeLinear's output type: its zero point's, its output_dtype, or uint8. */
        private DataType qOutputType(NodeProto q) {
            if (q.getInputCount() > 2 && !q.getInput(2).isEmpty()) {
                TensorProto z = inits.get(q.getInput(2));
                if (z != null) {
                    return known(z.getDataType());
                }
                Integer vt = valueTypes.get(q.getInput(2));
                if (vt != null) {
                    return known(vt);
                }
            }
            long od = Nodes.intAttr(q, "output_dtype", 0);
            if (od != 0) {
                return known((int) od);
            }
            Integer vt = valueTypes.get(q.getOutput(0));
            return vt != null ? known(vt) : DataType.UINT8;
        }

        private long[] zeroPoints(NodeProto qdq) {
            return qdq.getInputCount() < 3 ? new long[0] : integers(qdq.getInput(2));
        }

        /** A constant zero point's values (none for an absent, computed, 4-bit or float8 one). */
        private long[] integers(String name) {
            if (name.isEmpty()) {
                return new long[0];
            }
            TensorProto z = inits.get(name);
            DataType t = z == null ? null : known(z.getDataType());
            boolean integer = t == DataType.UINT8 || t == DataType.INT8 || t == DataType.UINT16 || t == DataType.INT16
                    || t == DataType.INT32;
            return integer ? Tensors.toHost(z).toLongs() : new long[0]; // 4-bit and float8 types are not read
        }

        private float[] floatsOf(String name) {
            TensorProto t = inits.get(name);
            return t == null || known(t.getDataType()) == null ? null : Tensors.floats(t);
        }

        private long[] dims(String name) {
            TensorProto t = inits.get(name);
            return t == null ? new long[0] : Tensors.dims(t);
        }
    }

    static boolean isQ(NodeProto n) {
        return n != null && n.getOpType().equals("QuantizeLinear")
                && (Model.isDefaultDomain(n.getDomain()) || n.getDomain().equals(MS));
    }

    static boolean isDq(NodeProto n) {
        return n != null && n.getOpType().equals("DequantizeLinear")
                && (Model.isDefaultDomain(n.getDomain()) || n.getDomain().equals(MS));
    }

    private static DataType known(int code) {
        return DataType.isKnown(code) ? DataType.of(code) : null;
    }

    private static long numel(long[] dims) {
        long n = 1;
        for (long d : dims) {
            n *= d;
        }
        return n;
    }

    private static boolean allZero(long[] v) {
        for (long x : v) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    /** A quantized type's short name (u8, s8, u16, s16, s32). */
    static String lower(DataType t) {
        if (t == null) {
            return "unknown type";
        }
        return switch (t) {
            case UINT8 -> "u8";
            case INT8 -> "s8";
            case UINT16 -> "u16";
            case INT16 -> "s16";
            case INT32 -> "s32";
            default -> t.name().toLowerCase(Locale.ROOT);
        };
    }

    private static String namesOf(Set<DataType> types) {
        List<String> out = new ArrayList<>();
        for (DataType t : DataType.values()) {
            if (types.contains(t)) {
                out.add(lower(t));
            }
        }
        return String.join(" or ", out);
    }

    /** Distinct rule ids of {@code violations}, in first-seen order. */
    public static List<String> ruleIds(List<Violation> violations) {
        Set<String> seen = new HashSet<>();
        List<String> ids = new ArrayList<>();
        for (Violation v : violations) {
            if (seen.add(v.rule().id())) {
                ids.add(v.rule().id());
            }
        }
        return ids;
    }
}
