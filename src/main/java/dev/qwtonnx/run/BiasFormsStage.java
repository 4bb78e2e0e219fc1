package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.QDQ;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.FullRankMatMulBias;
import dev.qwtonnx.quant.Int32MatMulBias;
import java.util.List;

/**
 * A quantized MatMul's bias Add in the form ORT fuses: an int32 bias where its kernel takes one,
 * so that compensation has a bias to fold into and ORT runs one integer kernel.
 */
final class BiasFormsStage extends BaseStage {
    static final String NAME = "bias-forms";

    private final QuantizeRun.Options options;

    BiasFormsStage(QuantizeRun.Options options) {
        super(NAME, List.of(PLAN, QDQ), List.of(QUANTIZED));
        this.options = options;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model qdq = facts.get(QDQ);
        facts.put(QUANTIZED, facts.get(PLAN).layers().isEmpty() ? qdq
                : new Pipeline(List.of(new Int32MatMulBias(), new FullRankMatMulBias()), options.verifyBetweenPasses())
                        .run(qdq, ctx.log()));
    }
}
