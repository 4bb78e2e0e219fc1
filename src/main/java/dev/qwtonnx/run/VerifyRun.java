package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.verify.Report;
import dev.qwtonnx.verify.ReportWriter;
import dev.qwtonnx.verify.Verifier;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The verify run: any float model and any INT8 model of the same inputs and outputs (ours, another
 * tool's QDQ, QOperator or dynamic) compared on samples; a report out.
 */
public final class VerifyRun {
    private VerifyRun() {
    }

    /** The stages of one verify run; with a {@code report} path, the report is written there. */
    public static List<Stage> stages(Verifier.Options options, String dataSource, Path report) {
        List<Stage> stages = new ArrayList<>(List.of(
                new PrepareForMatching(),            // the float model as quantizers see it
                new Analyse(options, dataSource)));  // fidelity per output and per layer, what ORT runs, size, latency
        if (report != null) {
            stages.add(new WriteReport(report));
        }
        return List.copyOf(stages);
    }

    /** Runs the stages on the float and quantized models (each with the file it came from, for sizes). */
    public static Report run(Verifier.Subject floatModel, Verifier.Subject quantModel, Verifier.Options options,
            String dataSource, Path report, RunContext ctx) {
        Facts facts = new Facts().put(FLOAT, floatModel).put(QUANT, quantModel);
        StageRunner.run("verify", stages(options, dataSource, report), ctx, facts);
        return facts.get(REPORT);
    }

    /**
     * The float model with constants as initializers and BatchNorm folded into Conv, as quantizers
     * see it, so that its weights and layer outputs line up with the quantized model's. Semantics
     * are unchanged.
     */
    public static Model forMatching(Model floatModel) {
        return new Pipeline(List.of(new ConstantToInitializer(), new FoldBatchNorm()), false).run(floatModel, null);
    }

    static final Fact<Verifier.Subject> FLOAT = Fact.named("float model");
    static final Fact<Verifier.Subject> QUANT = Fact.named("quantized model");
    static final Fact<Verifier.Subject> MATCHABLE = Fact.named("float model for matching");
    static final Fact<Report> REPORT = Fact.named("report");

    private static final class PrepareForMatching extends BaseStage {
        PrepareForMatching() {
            super("prepare-for-matching", List.of(FLOAT), List.of(MATCHABLE));
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            Verifier.Subject f = facts.get(FLOAT);
            facts.put(MATCHABLE, new Verifier.Subject(forMatching(f.model()), f.path()));
        }
    }

    private static final class Analyse extends BaseStage {
        private final Verifier.Options options;
        private final String dataSource;

        Analyse(Verifier.Options options, String dataSource) {
            super("analyse", List.of(MATCHABLE, QUANT), List.of(REPORT));
            this.options = options;
            this.dataSource = dataSource;
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            facts.put(REPORT, Verifier.verify(facts.get(MATCHABLE), facts.get(QUANT), ctx.measured(), dataSource, options,
                    null, ctx.progress()));
        }
    }

    private static final class WriteReport extends BaseStage {
        private final Path path;

        WriteReport(Path path) {
            super("write-report", List.of(REPORT), List.of());
            this.path = path;
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            ReportWriter.write(facts.get(REPORT), path);
        }
    }
}
