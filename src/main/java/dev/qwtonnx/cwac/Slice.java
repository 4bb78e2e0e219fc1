package dev.qwtonnx.cwac;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model cut down to what computes some of its tensors: the nodes those depend on, the
 * initializers and inputs these read, and the tensors as the only outputs. ONNX Runtime runs every
 * node of a session whatever outputs are asked for; measuring an early compensation stage on the
 * cut model runs only the start of the network.
 */
final class Slice {
    private Slice() {
    }

    /** The part of {@code model} that computes {@code outputs} (float tensors), in the original node order. */
    static Model to(Model model, Collection<String> outputs) {
        GraphProto g = model.graph();
        Set<String> needed = new HashSet<>(outputs);
        List<NodeProto> nodes = g.getNodeList();
        boolean[] keep = new boolean[nodes.size()];
        // Nodes are in topological order: walking back, a node is kept when a kept node or an output reads it.
        for (int i = nodes.size() - 1; i >= 0; i--) {
            NodeProto n = nodes.get(i);
            for (String out : n.getOutputList()) {
                if (needed.contains(out)) {
                    keep[i] = true;
                    break;
                }
            }
            if (keep[i]) {
                needed.addAll(n.getInputList());
                // Subgraphs may read outer-scope tensors without listing them as the node's inputs.
                for (GraphProto sub : Subgraphs.of(n)) {
                    Subgraphs.forEachNode(sub, m -> needed.addAll(m.getInputList()));
                }
            }
        }
        GraphProto.Builder b = g.toBuilder().clearNode().clearInput().clearOutput().clearInitializer().clearValueInfo();
        for (int i = 0; i < nodes.size(); i++) {
            if (keep[i]) {
                b.addNode(nodes.get(i));
            }
        }
        for (ValueInfoProto in : g.getInputList()) {
            if (needed.contains(in.getName())) {
                b.addInput(in);
            }
        }
        for (TensorProto t : g.getInitializerList()) {
            if (needed.contains(t.getName())) {
                b.addInitializer(t);
            }
        }
        for (ValueInfoProto v : g.getValueInfoList()) {
            if (needed.contains(v.getName())) {
                b.addValueInfo(v);
            }
        }
        TypeProto floatType = TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE)).build();
        Set<String> added = new HashSet<>();
        for (String out : outputs) {
            if (added.add(out)) {
                b.addOutput(ValueInfoProto.newBuilder().setName(out).setType(floatType));
            }
        }
        return model.withGraph(b.build());
    }

    /**
     * The part of {@code model} that computes {@code outputs} from {@code inputs} (name to ONNX
     * element type) and what else it needs: the nodes computing the inputs are left out, and the
     * inputs are graph inputs of the given types, of any shape.
     */
    static Model between(Model model, Map<String, Integer> inputs, Collection<String> outputs) {
        GraphProto.Builder g = model.graph().toBuilder();
        List<NodeProto> kept = new ArrayList<>();
        for (NodeProto n : g.getNodeList()) {
            boolean computesInput = false;
            for (String out : n.getOutputList()) {
                computesInput |= inputs.containsKey(out);
            }
            if (!computesInput) {
                kept.add(n);
            }
        }
        g.clearNode().addAllNode(kept);
        Set<String> declared = new HashSet<>();
        g.getInputList().forEach(v -> declared.add(v.getName()));
        for (Map.Entry<String, Integer> in : inputs.entrySet()) {
            if (declared.add(in.getKey())) {
                g.addInput(ValueInfoProto.newBuilder().setName(in.getKey()).setType(TypeProto.newBuilder()
                        .setTensorType(TypeProto.Tensor.newBuilder().setElemType(in.getValue()))));
            }
        }
        return to(model.withGraph(g.build()), outputs);
    }

}
