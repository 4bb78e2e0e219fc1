package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.LOOP_BODIES;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.WITH_BRANCHES;
import static dev.qwtonnx.run.QuantizeRun.WITH_LOOPS;

import java.util.List;

/** The layers inside Loop and Scan bodies, calibrated and compensated over all iterations. */
final class LoopBodiesStage extends QuantizeStage {
    LoopBodiesStage(QuantizeRun.Options options) {
        super("loop-bodies", options, List.of(PREPARED, WITH_BRANCHES), List.of(WITH_LOOPS, LOOP_BODIES));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        if (!options.quant().target().subgraphs()) {
            // The target takes no control flow: Loop and Scan bodies stay as they are, in float.
            facts.put(WITH_LOOPS, facts.get(WITH_BRANCHES));
            facts.put(LOOP_BODIES, List.of());
            return;
        }
        LoopBodies.Outcome loops = LoopBodies.quantize(facts.get(PREPARED), facts.get(WITH_BRANCHES), ctx.calibration(),
                options, ctx.progress(), ctx.log());
        for (dev.qwtonnx.pass.Rejection r : loops.foldRejections()) {
            ctx.reject(name(), r.subject(), r.reason());
        }
        for (QuantizeRun.LoopBody b : loops.bodies()) {
            for (String r : b.leftFloat()) {
                ctx.reject(name(), b.node(), r);
            }
        }
        facts.put(WITH_LOOPS, loops.model());
        facts.put(LOOP_BODIES, loops.bodies());
    }
}
