package dev.qwtonnx.pass;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import java.util.ArrayList;
import java.util.List;

/**
 * A pass that is one rewrite applied node by node: each node of the graph (as it was before the pass) that the
 * rewrite {@link #matches} is {@linkplain #rejection checked}, then rewritten in place, or left with the reason
 * recorded as a {@link Rejection}. The model comes back unchanged where no node was rewritten.
 */
public interface NodeRewrite extends Pass {
    /** Whether the rewrite is about {@code n} at all (a node it does not match is not mentioned). */
    boolean matches(NodeProto n);

    /** Null where {@code n} can be rewritten in {@code g}, else why not. */
    String rejection(GraphEditor g, NodeProto n);

    /** Rewrites {@code n}, which passed the check, in {@code g}. */
    void rewrite(GraphEditor g, NodeProto n);

    @Override
    default PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean changed = false;
        List<Rejection> rejections = new ArrayList<>();
        for (NodeProto n : g.nodesSnapshot()) {
            if (!matches(n)) {
                continue;
            }
            String why = rejection(g, n);
            if (why != null) {
                rejections.add(new Rejection(name(), Nodes.describe(n), why));
            } else {
                rewrite(g, n);
                changed = true;
            }
        }
        return changed ? PassResult.changed(model.withGraph(g.build()), rejections)
                : PassResult.unchanged(model, rejections);
    }
}
