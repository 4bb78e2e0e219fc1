package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AHEAD;
import static dev.qwtonnx.run.QuantizeRun.MATCHED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.cwac.WeightResiduals;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.QuantizedWeight;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Starts what depends on the weights alone (their rounding to the nearest step, and the rounding
 * residuals compensation measures with) on a thread of its own, so that it runs while ORT makes the
 * float session (on one core) and calibrates. Whoever needs a result first computes it if the thread
 * has not, so nothing waits longer than without it.
 */
final class StartAheadStage extends QuantizeStage {
    /** The tasks, and the results by layer; closing stops the thread. */
    record WorkAhead(AheadTasks tasks, Map<String, Supplier<QuantizedWeight>> nearest, WeightResiduals residuals)
            implements AutoCloseable {
        @Override
        public void close() {
            tasks.close();
        }
    }

    StartAheadStage(QuantizeRun.Options options) {
        super("start-ahead", options, List.of(PREPARED, MATCHED), List.of(AHEAD));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        LayerMatcher.Result plan = facts.get(MATCHED);
        AheadTasks ahead = new AheadTasks("qwt-onnx-weights");
        try {
            Map<String, Supplier<QuantizedWeight>> nearest = QdqQuantizer.roundAhead(prepared, plan.layers(),
                    options.quant(), ahead);
            WeightResiduals residuals = WeightResiduals.ahead(prepared, plan.layers(), nearest, options.cwac(), ahead);
            // ORT's native libraries are unpacked from its jar first: inflating them holds the JVM's GC locker again
            // and again, and near the heap's limit a thread allocating meanwhile makes the JVM print a warning beside
            // the one-line out-of-memory message.
            ai.onnxruntime.OrtEnvironment.getEnvironment();
            ahead.start(); // no thread when there is nothing to round
            facts.put(AHEAD, new WorkAhead(ahead, nearest, residuals));
        } catch (RuntimeException | Error e) {
            ahead.close();
            throw e;
        }
    }
}
