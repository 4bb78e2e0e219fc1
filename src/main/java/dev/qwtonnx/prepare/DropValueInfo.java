package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;

/**
 * Drops the {@code value_info} entries of the graph and its subgraphs. They are optional hints, but
 * ONNX Runtime rejects a model whose hint disagrees with the shape it infers, and exporters (or
 * earlier edits) leave stale ones behind; the rewrites that follow would make more of them stale.
 * ORT infers every shape it needs itself, so nothing is lost. Graph inputs and outputs keep their
 * declared types.
 */
public final class DropValueInfo implements Pass {
    @Override
    public String name() {
        return "drop-value-info";
    }

    @Override
    public PassResult run(Model model) {
        if (!hasValueInfo(model.graph())) {
            return PassResult.unchanged(model);
        }
        return PassResult.changed(model.withGraph(strip(model.graph())));
    }

    private static boolean hasValueInfo(GraphProto g) {
        return Subgraphs.anyGraph(g, sub -> sub.getValueInfoCount() > 0);
    }

    private static GraphProto strip(GraphProto g) {
        GraphProto.Builder b = g.toBuilder().clearValueInfo();
        for (int i = 0; i < b.getNodeCount(); i++) {
            b.setNode(i, Subgraphs.withSubgraphs(b.getNode(i), DropValueInfo::strip));
        }
        return b.build();
    }
}
