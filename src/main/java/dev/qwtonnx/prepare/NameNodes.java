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
     * {@code out}, made from {@code named} ({@code given} named by {@link #apply}) without adding, removing or
     * reordering a node, with the names {@code given} had: a node {@code out} still has as naming made it is
     * {@code given}'s own (its subgraphs' names included), any other keeps what changed and takes back its name. A
     * command that rewrites a user's model only in its initializers (compensate) names its nodes to find layers by
     * name and writes them as they came. Where naming changed nothing, or with another node count, {@code out} as it is.
     */
    public static Model withNamesOf(Model out, Model namedModel, Model given) {
        if (namedModel.graph() == given.graph()) {
            return out;
        }
        GraphProto named = namedModel.graph();
        GraphProto g = out.graph();
        GraphProto was = given.graph();
        if (g.getNodeCount() != was.getNodeCount() || named.getNodeCount() != was.getNodeCount()) {
            return out;
        }
        GraphProto.Builder b = null;
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            NodeProto back = n.equals(named.getNode(i)) ? was.getNode(i)
                    : n.getName().equals(was.getNode(i).getName()) ? n
                    : n.toBuilder().setName(was.getNode(i).getName()).build();
            if (back != n) {
                b = b == null ? g.toBuilder() : b;
                b.setNode(i, back);
            }
        }
        return b == null ? out : out.withGraph(b.build());
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
