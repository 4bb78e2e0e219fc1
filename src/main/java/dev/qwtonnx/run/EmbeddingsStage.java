package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.WITH_LOOPS;
import static dev.qwtonnx.run.QuantizeRun.WITH_TABLES;

import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.EmbeddingPrecision;
import dev.qwtonnx.quant.EmbeddingQuantizer;
import java.util.List;

/**
 * Gather tables (token, position, type embeddings) as int8 with per-row scales, after compensation:
 * compensation cuts the float prefix ahead of the first quantized layer (the embeddings) from its
 * measuring models and feeds them the float model's values there, so the tables must still be
 * float while it measures. A row's int8 error is far below the layers' (see decision 0015).
 */
final class EmbeddingsStage extends QuantizeStage {
    static final String NAME = "embeddings";

    EmbeddingsStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(WITH_LOOPS), List.of(WITH_TABLES));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        if (options.embeddings() == EmbeddingPrecision.FLOAT) {
            facts.put(WITH_TABLES, facts.get(WITH_LOOPS));
            return;
        }
        Pipeline.Result r = new Pipeline(List.of(new EmbeddingQuantizer()), options.verifyBetweenPasses())
                .apply(facts.get(WITH_LOOPS), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(WITH_TABLES, r.model());
    }
}
