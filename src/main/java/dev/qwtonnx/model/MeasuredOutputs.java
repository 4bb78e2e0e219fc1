package dev.qwtonnx.model;

import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tensors a model's output fidelity is measured on: its float outputs; where it has none (a classifier or a
 * CTC recognizer that returns ArgMax indices, a detector that returns a boolean mask), the float tensors those
 * outputs are computed from, nearest first (the probabilities an ArgMax reads). A model's quantized form keeps the
 * names of the float activations it does not quantize, so both models are measured on the same names; sessions
 * expose the ones that are not graph outputs ({@link #beyondGraphOutputs}).
 */
public final class MeasuredOutputs {
    private MeasuredOutputs() {
    }

    private static final int FLOAT = TensorProto.DataType.FLOAT_VALUE;
    private static final int INT64 = TensorProto.DataType.INT64_VALUE;
    private static final int BOOL = TensorProto.DataType.BOOL_VALUE;
    private static final Set<String> INDICES = Set.of("ArgMax", "ArgMin", "NonZero", "Shape", "Size");
    private static final Set<String> TRUTHS = Set.of("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
            "Not", "And", "Or", "Xor", "IsNaN", "IsInf");

    /** The float outputs, or where there are none, the float tensors the outputs are computed from. */
    public static List<String> of(Model m) {
        GraphProto g = m.graph();
        List<String> floats = new ArrayList<>();
        for (ValueInfoProto v : g.getOutputList()) {
            if (!v.getType().hasTensorType() || v.getType().getTensorType().getElemType() == FLOAT) {
                floats.add(v.getName());
            }
        }
        if (!floats.isEmpty() || g.getOutputCount() == 0) {
            return floats;
        }
        Types types = new Types(g);
        Set<String> found = new LinkedHashSet<>();
        Set<String> seen = new HashSet<>();
        Deque<String> next = new ArrayDeque<>();
        g.getOutputList().forEach(v -> next.add(v.getName()));
        // Breadth first from the outputs: the float tensors nearest to them, and nothing behind those.
        while (!next.isEmpty()) {
            String t = next.poll();
            NodeProto p = types.graph.producer(t);
            if (!seen.add(t) || p == null) {
                continue;
            }
            for (String in : p.getInputList()) {
                if (in.isEmpty() || types.isFixed(in) || types.graph.isGraphInput(in)) {
                    continue;
                }
                if (types.of(in) == FLOAT) {
                    found.add(in);
                } else {
                    next.add(in);
                }
            }
        }
        return List.copyOf(found);
    }

    /** Those of {@link #of} that are not graph outputs: what a session measuring them exposes. */
    public static List<String> beyondGraphOutputs(Model m) {
        Set<String> outputs = new HashSet<>();
        m.graph().getOutputList().forEach(v -> outputs.add(v.getName()));
        return of(m).stream().filter(n -> !outputs.contains(n)).toList();
    }

    /** What a summary says where the model is measured beyond its outputs; empty where it has float outputs. */
    public static String note(Model m) {
        List<String> beyond = beyondGraphOutputs(m);
        return beyond.isEmpty() ? "" : "the model has no float output: fidelity is measured on "
                + String.join(", ", beyond.stream().map(n -> "'" + n + "'").toList())
                + ", the float tensors its outputs are computed from";
    }

    /**
     * Element types of the top-level tensors: declared or inferred ({@link TensorFacts}), else by the producing
     * operator (indices and truth values by their kind, Cast by its target, DequantizeLinear float, the rest as
     * their first input). Unknown (0) where none of that says.
     */
    private static final class Types {
        final GraphEditor graph;
        final TensorFacts facts;
        final Map<String, Integer> known = new HashMap<>();

        Types(GraphProto g) {
            graph = new GraphEditor(g);
            facts = TensorFacts.of(g);
        }

        /** An initializer or a Constant node's output: no activation to measure. */
        boolean isFixed(String t) {
            NodeProto p = graph.producer(t);
            return graph.isInitializer(t) || p != null && p.getOpType().equals("Constant");
        }

        int of(String t) {
            Integer k = known.get(t);
            if (k != null) {
                return k;
            }
            known.put(t, 0); // a cycle reads as unknown
            int type = infer(t);
            known.put(t, type);
            return type;
        }

        private int infer(String t) {
            int declared = facts.elemType(t);
            NodeProto p = graph.producer(t);
            if (declared != 0 || p == null || !Model.isDefaultDomain(p.getDomain())) {
                return declared;
            }
            String op = p.getOpType();
            if (INDICES.contains(op) || op.equals("TopK") && t.equals(p.getOutput(1))) {
                return INT64;
            }
            if (TRUTHS.contains(op)) {
                return BOOL;
            }
            if (op.equals("DequantizeLinear")) {
                return FLOAT;
            }
            if (op.equals("Cast")) {
                for (AttributeProto a : p.getAttributeList()) {
                    if (a.getName().equals("to")) {
                        return (int) a.getI();
                    }
                }
                return 0;
            }
            if (op.equals("Where") && p.getInputCount() > 1) {
                return of(p.getInput(1));
            }
            if (op.equals("QuantizeLinear") || op.equals("If") || op.equals("Loop") || op.equals("Scan")
                    || p.getInputCount() == 0 || p.getInput(0).isEmpty()) {
                return 0;
            }
            return of(p.getInput(0));
        }
    }
}
