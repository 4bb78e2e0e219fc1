package dev.qwtonnx.quant;

import dev.qwtonnx.calib.Range;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.TensorFacts;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Quantizes MatMuls whose two inputs are both activations (attention's Q·Kᵀ and scores·V): each
 * input gets a uint8 per-tensor QuantizeLinear/DequantizeLinear pair at its calibrated range, read
 * only by the MatMul, so that ORT's QDQ MatMul selector runs it as MatMulIntegerToFloat (or
 * QLinearMatMul when a Q follows). An input that is already a DequantizeLinear output is read as it is.
 *
 * <p>Where it pays is fixed in code, by shape: the integer kernel's saving grows with the inner
 * dimension K, while quantizing both inputs costs a pass over each and, for Q·Kᵀ, undoes ORT's
 * fusion of the Kᵀ Transpose and the score scaling into one FusedMatMul. A MatMul is quantized only
 * when its K is known statically and is at least {@link #MIN_INNER}; all others stay float (see
 * docs/decisions/0015-int8-embeddings.md for the measurements behind the rule).
 *
 * <p>{@link #plan} chooses on the float model (calibration asks it which tensors need ranges); the
 * pass rewrites those MatMuls in the quantized model, found by node name. Added nodes carry
 * {@link Nodes#CREATED_BY}.
 */
public final class ActivationMatMulQuantizer implements Pass {
    public static final String NAME = "quantize-activation-matmuls";

    /** The smallest static inner dimension at which an activation×activation MatMul is quantized. */
    public static final long MIN_INNER = 256;

    private final Plan plan;
    private final Map<String, Range> ranges;

    public ActivationMatMulQuantizer(Plan plan, Map<String, Range> ranges) {
        this.plan = plan;
        this.ranges = Map.copyOf(ranges);
    }

    /** The MatMuls to quantize (by node name), the float tensors they read, and why the others stay float. */
    public record Plan(List<String> nodes, Set<String> tensors, List<Rejection> rejections) {
        public Plan {
            nodes = List.copyOf(nodes);
            tensors = Set.copyOf(tensors);
            rejections = List.copyOf(rejections);
        }

        public static final Plan NONE = new Plan(List.of(), Set.of(), List.of());
    }

    /**
     * Whether the pass applies to {@code target}: ORT's CPU provider with uint8 activations, where
     * the rule of {@link #MIN_INNER} was measured; other targets and 16-bit activations keep these
     * MatMuls float.
     */
    public static boolean appliesTo(dev.qwtonnx.target.Target target) {
        return target.ortCpu() && target.activations().type() == dev.qwtonnx.model.DataType.UINT8;
    }

    /** Chooses, on the float model, which activation×activation MatMuls are quantized. */
    public static Plan plan(Model floatModel) {
        GraphEditor g = new GraphEditor(floatModel.graph());
        TensorFacts facts = TensorFacts.of(floatModel.graph());
        List<String> nodes = new ArrayList<>();
        Set<String> tensors = new LinkedHashSet<>();
        List<Rejection> rejections = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("MatMul") || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() != 2
                    || g.isInitializer(n.getInput(0)) || g.isInitializer(n.getInput(1))) {
                continue;
            }
            String why = check(facts, n);
            if (why != null) {
                rejections.add(new Rejection(NAME, Nodes.describe(n), why));
                continue;
            }
            nodes.add(n.getName());
            tensors.add(n.getInput(0));
            tensors.add(n.getInput(1));
        }
        return new Plan(nodes, tensors, rejections);
    }

    private static String check(TensorFacts facts, NodeProto n) {
        for (int i = 0; i < 2; i++) {
            int type = facts.elemType(n.getInput(i));
            if (type != 0 && type != DataType.FLOAT.code) {
                return "input " + i + " is not float32";
            }
        }
        long k = facts.dim(n.getInput(0), -1);
        if (k < 0) {
            return "both inputs are activations and the inner dimension is not known statically, so the integer"
                    + " kernel is not known to pay";
        }
        if (k < MIN_INNER) {
            return "both inputs are activations and the inner dimension " + k + " is below " + MIN_INNER
                    + ", where the integer kernel does not pay";
        }
        return null;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        if (plan.nodes().isEmpty()) {
            return PassResult.unchanged(model, plan.rejections());
        }
        GraphEditor g = new GraphEditor(model.graph(), new NameAuthority(model.graph()));
        Map<String, NodeProto> byName = new HashMap<>();
        for (NodeProto n : g.nodes()) {
            byName.put(n.getName(), n);
        }
        List<Rejection> rejections = new ArrayList<>(plan.rejections());
        List<NodeProto> accepted = new ArrayList<>();
        for (String name : plan.nodes()) {
            NodeProto n = byName.get(name);
            String why = n == null || !n.getOpType().equals("MatMul") ? "it is not in the quantized graph"
                    : missingRange(g, n);
            if (why != null) {
                rejections.add(new Rejection(NAME, "MatMul node '" + name + "'", why));
            } else {
                accepted.add(n);
            }
        }
        if (accepted.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        Map<String, String> dequantized = new HashMap<>();
        for (NodeProto planned : accepted) {
            NodeProto n = g.producer(planned.getOutput(0));
            for (int i = 0; i < 2; i++) {
                String x = n.getInput(i);
                if (isDequantized(g, x)) {
                    continue;
                }
                String dq = dequantized.get(x);
                if (dq == null) {
                    dq = insertQdq(g, x, n);
                    dequantized.put(x, dq);
                }
                n = g.setInput(n, i, dq);
            }
        }
        return PassResult.changed(model.withGraph(g.build()), rejections);
    }

    private String missingRange(GraphEditor g, NodeProto n) {
        for (String x : n.getInputList()) {
            if (!isDequantized(g, x) && !ranges.containsKey(x)) {
                return "no calibrated range for its input '" + x + "'";
            }
        }
        return null;
    }

    private static boolean isDequantized(GraphEditor g, String tensor) {
        NodeProto p = g.producer(tensor);
        return p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain());
    }

    /** A uint8 Q/DQ pair on {@code tensor} at its calibrated range; returns the DQ's output. */
    private String insertQdq(GraphEditor g, String tensor, NodeProto reader) {
        QuantMath.Affine a = QuantMath.uint8(ranges.get(tensor));
        String scale = g.names().fresh(tensor + "_scale");
        String zp = g.names().fresh(tensor + "_zero_point");
        g.putInitializer(Tensors.floatScalar(scale, a.scale()));
        g.putInitializer(Tensors.byteTensor(zp, DataType.UINT8, new long[0], new int[] {a.zeroPoint()}));
        String q = g.names().fresh(tensor + "_quantized");
        String dq = g.names().fresh(tensor + "_dequantized");
        NodeProto qn = Nodes.node("QuantizeLinear", g.names().fresh(tensor + "_QuantizeLinear"),
                List.of(tensor, scale, zp), List.of(q), NAME);
        NodeProto dqn = Nodes.node("DequantizeLinear", g.names().fresh(tensor + "_DequantizeLinear"),
                List.of(q, scale, zp), List.of(dq), NAME);
        NodeProto producer = g.producer(tensor);
        if (producer != null) {
            g.insertAfter(producer, qn, dqn);
        } else {
            g.insertBefore(reader, qn, dqn);
        }
        return dq;
    }
}
