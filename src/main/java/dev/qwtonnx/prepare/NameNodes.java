package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.HashSet;
import java.util.Set;

/**
 * Gives every node a non-empty name unique across the model, subgraphs included: ONNX Runtime
 * refuses a graph in which two nodes share a name, which some exporters write, and messages name
 * nodes. Names are not identity: the quantizer records on each layer node the float node it came
 * from ({@link dev.qwtonnx.model.Nodes#FROM}), and later stages find nodes through edges.
 */
public final class NameNodes implements Pass {
    @Override
    public String name() {
        return "name-nodes";
    }

    @Override
    public PassResult run(Model model) {
        NameAuthority names = new NameAuthority(model.graph());
        GraphProto renamed = rename(model.graph(), names, new HashSet<>());
        return renamed == model.graph() ? PassResult.unchanged(model) : PassResult.changed(model.withGraph(renamed));
    }

    /** The model with unique node names: what the checker and ORT need before anything else looks at it. */
    public static Model apply(Model model) {
        return new NameNodes().run(model).model();
    }

    /**
     * The graph with its nodes (and its subgraphs' nodes) named uniquely across the whole model,
     * the same instance when nothing changed; {@code seen} holds the names kept so far.
     */
    private static GraphProto rename(GraphProto g, NameAuthority names, Set<String> seen) {
        GraphProto.Builder b = null;
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            NodeProto named = n;
            if (n.getName().isEmpty() || !seen.add(n.getName())) {
                String hint = n.getName().isEmpty() ? n.getOpType() + "_" + i : n.getName();
                String fresh = names.fresh(hint);
                seen.add(fresh);
                named = n.toBuilder().setName(fresh).build();
            }
            named = Subgraphs.withSubgraphs(named, sub -> rename(sub, names, seen));
            if (named != n) {
                b = b == null ? g.toBuilder() : b;
                b.setNode(i, named);
            }
        }
        return b == null ? g : b.build();
    }
}
