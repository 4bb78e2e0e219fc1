package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.BIASED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;

import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.quant.ActivationMatMulQuantizer;
import dev.qwtonnx.quant.ImplicitReadGuard;
import java.util.ArrayList;
import java.util.List;

/**
 * Activation×activation MatMuls quantized where the integer kernel pays, before compensation
 * measures the model, so that the fits of the layers after them see their error; then no Q/DQ pair
 * left where ORT's QDQ propagation would reach a subgraph's outer read ({@link ImplicitReadGuard}).
 */
final class ActivationMatMulsStage extends QuantizeStage {
    static final String NAME = "activation-matmuls";

    ActivationMatMulsStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PREPARED, RANGES, BIASED), List.of(QUANTIZED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        List<Pass> passes = new ArrayList<>();
        if (ActivationMatMulQuantizer.appliesTo(options.quant().target())) {
            passes.add(new ActivationMatMulQuantizer(ActivationMatMulQuantizer.plan(facts.get(PREPARED)),
                    facts.get(RANGES)));
        }
        // Last, on every Q/DQ pair placed: ORT must be able to make a session of the result (see the pass).
        passes.add(new ImplicitReadGuard());
        Pipeline.Result r = new Pipeline(passes, options.verifyBetweenPasses()).apply(facts.get(BIASED), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(QUANTIZED, r.model());
    }
}
