package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.BIASED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;

import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.ActivationMatMulQuantizer;
import dev.qwtonnx.quant.EmbeddingPrecision;
import dev.qwtonnx.quant.EmbeddingQuantizer;
import java.util.ArrayList;
import java.util.List;

/**
 * What the layer plan leaves out, quantized before compensation measures the model (so that its
 * fits see their error too): Gather tables as int8 with per-row scales, and the
 * activation×activation MatMuls where the integer kernel pays.
 */
final class EmbeddingsAttentionStage extends QuantizeStage {
    static final String NAME = "embeddings-attention";

    EmbeddingsAttentionStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PREPARED, RANGES, BIASED), List.of(QUANTIZED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        List<Pass> passes = new ArrayList<>();
        if (options.embeddings() == EmbeddingPrecision.INT8) {
            passes.add(new EmbeddingQuantizer());
        }
        passes.add(new ActivationMatMulQuantizer(ActivationMatMulQuantizer.plan(facts.get(PREPARED)), facts.get(RANGES)));
        Pipeline.Result r = new Pipeline(passes, options.verifyBetweenPasses()).apply(facts.get(BIASED), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(QUANTIZED, r.model());
    }
}
