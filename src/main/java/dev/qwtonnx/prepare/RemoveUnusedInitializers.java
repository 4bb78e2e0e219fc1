package dev.qwtonnx.prepare;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;

/**
 * Removes top-level initializers that nothing reads: no node input, no graph output, no subgraph
 * of an If/Loop/Scan. Old exports carry such leftovers, and {@link FoldConstantChains} leaves
 * the constants it folded; they would only add size to the output.
 */
public final class RemoveUnusedInitializers implements Pass {
    @Override
    public String name() {
        return "remove-unused-initializers";
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean changed = false;
        for (TensorProto t : model.graph().getInitializerList()) {
            if (g.useCount(t.getName()) == 0 && !g.isGraphInput(t.getName())) {
                g.removeInitializer(t.getName());
                changed = true;
            }
        }
        return changed ? PassResult.changed(model.withGraph(g.build())) : PassResult.unchanged(model);
    }
}
