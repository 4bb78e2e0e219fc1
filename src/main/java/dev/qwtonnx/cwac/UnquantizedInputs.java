package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.EmbeddingQuantizer;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.Set;

/**
 * The float tensor a quantized layer's input quantizes, where it is computed in float all the way
 * from the model's inputs: no quantize, dequantize or integer operator upstream of it, nor a
 * subgraph that could hold one. That tensor is then the float model's own activation (the same
 * float operators on the same inputs), so the layer's global target can be computed in the
 * quantized model's measuring run.
 */
final class UnquantizedInputs {
    private UnquantizedInputs() {
    }

    /** The float tensor {@code l}'s QuantizeLinear reads, if it has no quantized operator upstream; else null. */
    static String of(GraphEditor g, QdqLayer l) {
        NodeProto q = g.producer(l.input());
        if (l.qlinear() == null) {
            // QDQ: the layer reads DequantizeLinear(QuantizeLinear(x)).
            if (!is(q, "DequantizeLinear")) {
                return null;
            }
            q = g.producer(q.getInput(0));
        }
        if (!is(q, "QuantizeLinear")) {
            return null;
        }
        String x = q.getInput(0);
        Deque<String> todo = new ArrayDeque<>();
        Set<String> seen = new HashSet<>();
        todo.push(x);
        while (!todo.isEmpty()) {
            NodeProto n = g.producer(todo.pop());
            if (n == null) {
                continue; // a graph input or an initializer
            }
            if (quantized(n) || Subgraphs.hasSubgraphs(n)) {
                return null;
            }
            for (String in : n.getInputList()) {
                if (!in.isEmpty() && seen.add(in)) {
                    todo.push(in);
                }
            }
        }
        return x;
    }

    /**
     * Quantize / dequantize operators and integer kernels (QLinear*, *Integer*, com.microsoft Q*,
     * GatherBlockQuantized), and the nodes that read rows of an int8 Gather table back to float.
     */
    static boolean quantized(NodeProto n) {
        String op = n.getOpType();
        return op.contains("Quantize") || op.contains("Integer") || op.startsWith("QLinear")
                || (!Model.isDefaultDomain(n.getDomain()) && op.startsWith("Q"))
                || EmbeddingQuantizer.NAME.equals(Nodes.metadata(n, Nodes.CREATED_BY));
    }

    private static boolean is(NodeProto n, String op) {
        return n != null && n.getOpType().equals(op) && Model.isDefaultDomain(n.getDomain());
    }
}
