package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.HashSet;
import java.util.Set;

/**
 * Gives every top-level node a unique, non-empty name. Later stages pair a quantized layer with its
 * float original through the node's name, so names must identify nodes.
 */
public final class NameNodes implements Pass {
    @Override
    public String name() {
        return "name-nodes";
    }

    @Override
    public PassResult run(Model model) {
        GraphProto g = model.graph();
        NameAuthority names = new NameAuthority(g);
        Set<String> seen = new HashSet<>();
        GraphProto.Builder b = g.toBuilder();
        boolean changed = false;
        for (int i = 0; i < b.getNodeCount(); i++) {
            NodeProto n = b.getNode(i);
            if (n.getName().isEmpty() || !seen.add(n.getName())) {
                String hint = n.getName().isEmpty() ? n.getOpType() + "_" + i : n.getName();
                String fresh = names.fresh(hint);
                seen.add(fresh);
                b.setNode(i, n.toBuilder().setName(fresh));
                changed = true;
            }
        }
        return changed ? PassResult.changed(model.withGraph(b.build())) : PassResult.unchanged(model);
    }
}
