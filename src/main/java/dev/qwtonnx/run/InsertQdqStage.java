package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QDQ;
import static dev.qwtonnx.run.QuantizeRun.RANGES;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QdqQuantizer;
import java.util.List;

/**
 * Q/DQ around each planned layer in the target's form (by default int8 weights, u8 activations at
 * the calibrated ranges, int32 biases), and on the inputs of the residual Adds the target wants quantized.
 */
final class InsertQdqStage extends QuantizeStage {
    InsertQdqStage(QuantizeRun.Options options) {
        super("insert-qdq", options, List.of(PREPARED, PLAN, RANGES, ROUNDED), List.of(QDQ));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        LayerMatcher.Result plan = facts.get(PLAN);
        facts.put(QDQ, plan.layers().isEmpty() ? prepared
                : new Pipeline(List.of(new QdqQuantizer(options.quant(), plan.layers(), plan.joins(), facts.get(RANGES),
                        facts.get(ROUNDED))), options.verifyBetweenPasses()).run(prepared, ctx.log()));
    }
}
