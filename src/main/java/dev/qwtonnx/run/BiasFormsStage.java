package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.QDQ;
import static dev.qwtonnx.run.QuantizeRun.BIASED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.FullRankMatMulBias;
import dev.qwtonnx.quant.Int32MatMulBias;
import java.util.List;

/**
 * A quantized MatMul's bias Add in the form ORT fuses: an int32 bias where its kernel takes one,
 * so that compensation has a bias to fold into and ORT runs one integer kernel.
 */
final class BiasFormsStage extends QuantizeStage {
    static final String NAME = "bias-forms";

    BiasFormsStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PLAN, QDQ), List.of(BIASED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model qdq = facts.get(QDQ);
        dev.qwtonnx.target.Target target = options.quant().target();
        // These forms are what ORT's CPU fusions take; another target reads the MatMul's own bias Add.
        if (facts.get(PLAN).layers().isEmpty() || !target.ortCpu() || target.bias() != dev.qwtonnx.target.Target.Bias.INT32) {
            facts.put(BIASED, qdq);
            return;
        }
        Pipeline.Result r = new Pipeline(List.of(new Int32MatMulBias(), new FullRankMatMulBias()),
                options.verifyBetweenPasses()).apply(qdq, ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(BIASED, r.model());
    }
}
