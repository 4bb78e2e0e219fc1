package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Keeps ONNX Runtime's QDQ propagation away from the tensors a subgraph reads from outside. ORT's
 * QDQPropagationTransformer (a basic-level optimization, onnxruntime/core/optimizer/qdq_transformer/
 * qdq_propagation.cc) moves a DequantizeLinear forward past MaxPool, Reshape, Transpose, Squeeze,
 * Unsqueeze and Slice and puts a Q/DQ pair on the edge into each reader of that op's output; a node
 * that reads the tensor inside its subgraph (an If or Loop branch: an implicit input) has no input
 * slot for it, and ORT aborts the process on an assertion when it makes the session (ORT 1.29 and
 * 1.30; Silero VAD v4, whose LSTM branches read a Transpose of a quantized Conv output). The op
 * reading the DequantizeLinear there reads the float tensor the QuantizeLinear quantizes instead; a
 * pair left without readers goes, and its layer's output stays float.
 */
public final class ImplicitReadGuard implements Pass {
    /** The ops ORT propagates a DequantizeLinear past (qdq_propagation.cc, CanNodePropagate). */
    static final Set<String> PROPAGATED = Set.of("MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice");

    @Override
    public String name() {
        return "implicit-read-guard";
    }

    @Override
    public PassResult run(Model model) {
        GraphProto graph = model.graph();
        Set<String> implicit = new HashSet<>();
        for (NodeProto n : graph.getNodeList()) {
            if (Subgraphs.hasSubgraphs(n)) {
                implicit.addAll(Subgraphs.outerReads(n));
            }
        }
        if (implicit.isEmpty()) {
            return PassResult.unchanged(model);
        }
        GraphEditor g = new GraphEditor(graph);
        Set<String> outputs = new HashSet<>();
        graph.getOutputList().forEach(v -> outputs.add(v.getName()));
        List<Rejection> rejections = new ArrayList<>();
        boolean changed = false;
        for (NodeProto dq : List.copyOf(g.nodes())) {
            if (!dq.getOpType().equals("DequantizeLinear") || g.isInitializer(dq.getInput(0))) {
                continue;
            }
            NodeProto q = g.producer(dq.getInput(0));
            boolean rewired = false;
            for (NodeProto reader : g.consumers(dq.getOutput(0))) {
                if (!PROPAGATED.contains(reader.getOpType()) || !reaches(g, reader, implicit, new HashSet<>())) {
                    continue;
                }
                if (q == null || !q.getOpType().equals("QuantizeLinear")) {
                    rejections.add(new Rejection(name(), "DequantizeLinear node '" + dq.getName() + "'",
                            "it feeds a subgraph's outer read through " + reader.getOpType()
                                    + " but reads no QuantizeLinear"));
                    continue;
                }
                for (int i = 0; i < reader.getInputCount(); i++) {
                    if (reader.getInput(i).equals(dq.getOutput(0))) {
                        reader = g.setInput(reader, i, q.getInput(0));
                    }
                }
                rewired = true;
            }
            changed |= rewired;
            if (rewired && g.consumers(dq.getOutput(0)).isEmpty() && !outputs.contains(dq.getOutput(0))) {
                g.remove(dq);
                if (q != null && g.consumers(q.getOutput(0)).isEmpty() && !outputs.contains(q.getOutput(0))) {
                    g.remove(q);
                    for (int i = 1; i < q.getInputCount(); i++) {
                        g.removeInitializerIfUnused(q.getInput(i));
                    }
                }
                for (int i = 1; i < dq.getInputCount(); i++) {
                    g.removeInitializerIfUnused(dq.getInput(i));
                }
            }
        }
        return changed ? PassResult.changed(model.withGraph(g.build()), rejections)
                : PassResult.unchanged(model, rejections);
    }

    /** Whether {@code n}'s output reaches an implicit read through ops ORT propagates past (n included). */
    private static boolean reaches(GraphEditor g, NodeProto n, Set<String> implicit, Set<String> seen) {
        for (String out : n.getOutputList()) {
            if (implicit.contains(out)) {
                return true;
            }
            if (!seen.add(out)) {
                continue;
            }
            for (NodeProto next : g.consumers(out)) {
                if (PROPAGATED.contains(next.getOpType()) && reaches(g, next, implicit, seen)) {
                    return true;
                }
            }
        }
        return false;
    }
}
