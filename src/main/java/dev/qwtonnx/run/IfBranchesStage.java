package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.COMPENSATION;
import static dev.qwtonnx.run.QuantizeRun.IF_BRANCHES;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.WITH_BRANCHES;

import java.util.ArrayList;
import java.util.List;

/**
 * The branches of top-level If nodes: each branch taken on the calibration data is lifted to a
 * model of its own, run through this same list of stages on the samples that took it, and put back.
 */
final class IfBranchesStage extends QuantizeStage {
    IfBranchesStage(QuantizeRun.Options options) {
        super("if-branches", options, List.of(PREPARED, COMPENSATION), List.of(WITH_BRANCHES, IF_BRANCHES));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        if (!options.quant().target().subgraphs()) {
            // The target takes no control flow: the branches stay as they are, in float.
            facts.put(WITH_BRANCHES, facts.get(COMPENSATION).model());
            facts.put(IF_BRANCHES, List.of());
            return;
        }
        IfBranches.Outcome branches = IfBranches.quantize(facts.get(PREPARED), facts.get(COMPENSATION).model(), options,
                ctx);
        List<QuantizeRun.IfBranch> out = new ArrayList<>();
        for (IfBranches.Branch b : branches.branches()) {
            ctx.log().accept(b.toString());
            if (b.result() == null) {
                ctx.reject(name(), "If node '" + b.ifNode() + "' " + b.branch(), b.leftFloat());
            }
            out.add(new QuantizeRun.IfBranch(b.ifNode(), b.branch(), b.samples(), b.layers(), b.result(), b.toString()));
        }
        facts.put(WITH_BRANCHES, branches.model());
        facts.put(IF_BRANCHES, List.copyOf(out));
    }
}
