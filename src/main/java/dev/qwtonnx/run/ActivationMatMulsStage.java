package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.BIASED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;

import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.ActivationMatMulQuantizer;
import java.util.List;

/**
 * Activation×activation MatMuls quantized where the integer kernel pays, before compensation
 * measures the model, so that the fits of the layers after them see their error.
 */
final class ActivationMatMulsStage extends QuantizeStage {
    static final String NAME = "activation-matmuls";

    ActivationMatMulsStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PREPARED, RANGES, BIASED), List.of(QUANTIZED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        if (!ActivationMatMulQuantizer.appliesTo(options.quant().target())) {
            facts.put(QUANTIZED, facts.get(BIASED));
            return;
        }
        ActivationMatMulQuantizer pass = new ActivationMatMulQuantizer(ActivationMatMulQuantizer.plan(facts.get(PREPARED)),
                facts.get(RANGES));
        Pipeline.Result r = new Pipeline(List.of(pass), options.verifyBetweenPasses()).apply(facts.get(BIASED), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(QUANTIZED, r.model());
    }
}
