package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.InlineFunctions;
import dev.qwtonnx.prepare.IrVersionForOrt;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.target.RuleChecker;
import dev.qwtonnx.target.Target;
import dev.qwtonnx.target.Violation;
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
        return stages(options, dataSource, report, null);
    }

    /** The stages of one verify run, checking the quantized model against {@code target}'s rules when not null. */
    public static List<Stage> stages(Verifier.Options options, String dataSource, Path report, Target target) {
        List<Stage> stages = new ArrayList<>(List.of(
                new PrepareForMatching(),            // the float model as quantizers see it
                // fidelity per output and per layer, what ORT runs, size, latency
                new Analyse(options, dataSource, target == null ? REPORT : ANALYSED)));
        if (target != null) {
            stages.add(new CheckRules(target));      // every node breaking the target's rules, with the rule's source
        }
        if (report != null) {
            stages.add(new WriteReport(report));
        }
        return List.copyOf(stages);
    }

    /** Runs the stages on the float and quantized models (each with the file it came from, for sizes). */
    public static Report run(Verifier.Subject floatModel, Verifier.Subject quantModel, Verifier.Options options,
            String dataSource, Path report, RunContext ctx) {
        return run(floatModel, quantModel, options, dataSource, report, null, ctx);
    }

    /** As {@link #run}, also checking the quantized model against {@code target}'s rules when not null. */
    public static Report run(Verifier.Subject floatModel, Verifier.Subject quantModel, Verifier.Options options,
            String dataSource, Path report, Target target, RunContext ctx) {
        // Layers are measured in maps keyed by node name: an unnamed node gets one, as the float model's do; both
        // models are read at an IR version ORT reads.
        Verifier.Subject named = new Verifier.Subject(NameNodes.apply(IrVersionForOrt.apply(quantModel.model())),
                quantModel.path());
        Facts facts = new Facts().put(FLOAT, floatModel).put(QUANT, named);
        StageRunner.run("verify", stages(options, dataSource, report, target), ctx, facts);
        return facts.get(REPORT);
    }

    /** What the summary and the report say about a target whose rules were checked. */
    public static final String RULES_ONLY_NOTE = "checked against the rules, not run on the device";

    /** {@code quant} checked against {@code target}'s rules, as the report holds it. */
    public static Report.TargetCheck targetCheck(Model quant, Target target) {
        List<Violation> vs = RuleChecker.check(quant, target);
        String note = switch (target.runtime()) {
            case RULES_ONLY -> RULES_ONLY_NOTE;
            case ORT_CPU -> "checked against the rules; the figures ran on ORT's CPU provider on this machine";
            default -> "checked against the rules; the figures ran on ORT's CPU provider on this machine "
                    + "(--run-on-target also runs it on " + platforms(target).stream()
                            .map(dev.qwtonnx.verify.runtime.Platform::description).toList() + ")";
        };
        return new Report.TargetCheck(target.name(), target.description(), target.runtime().name(), note,
                RuleChecker.rules(target), vs.stream().map(v -> new Report.RuleViolation(v.node(), v.opType(),
                        v.rule().id(), v.detail())).toList());
    }

    /** Where this machine can run a model for {@code target} besides ORT's CPU provider here. */
    public static List<dev.qwtonnx.verify.runtime.Platform> platforms(Target target) {
        return switch (target.runtime()) {
            case ORT_CPU, RULES_ONLY -> List.of();
            case ORT_CPU_ANY -> List.of(dev.qwtonnx.verify.runtime.Platform.X86_AVX2,
                    dev.qwtonnx.verify.runtime.Platform.ARM64_DOTPROD, dev.qwtonnx.verify.runtime.Platform.ARM64_NO_DOTPROD);
            case QEMU_X86_AVX2 -> List.of(dev.qwtonnx.verify.runtime.Platform.X86_AVX2);
            case QEMU_ARM64 -> List.of(dev.qwtonnx.verify.runtime.Platform.ARM64_DOTPROD,
                    dev.qwtonnx.verify.runtime.Platform.ARM64_NO_DOTPROD);
            case NODE_WASM -> List.of(dev.qwtonnx.verify.runtime.Platform.WASM);
        };
    }

    /**
     * The float model at an IR version ORT reads, with its local functions inlined and every node named (as
     * quantize does all three), constants as initializers and BatchNorm folded into Conv, as quantizers see it, so
     * that its weights and layer outputs line up with the quantized model's. Semantics are unchanged.
     */
    public static Model forMatching(Model floatModel) {
        return new Pipeline(List.of(new IrVersionForOrt(), new InlineFunctions(), new NameNodes(),
                new ConstantToInitializer(), new FoldBatchNorm()), false).run(floatModel, null);
    }

    static final Fact<Verifier.Subject> FLOAT = Fact.named("float model");
    static final Fact<Verifier.Subject> QUANT = Fact.named("quantized model");
    static final Fact<Verifier.Subject> MATCHABLE = Fact.named("float model for matching");
    static final Fact<Report> ANALYSED = Fact.named("report before the target's rules");
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

        private final Fact<Report> out;

        Analyse(Verifier.Options options, String dataSource, Fact<Report> out) {
            super("analyse", List.of(MATCHABLE, QUANT), List.of(out));
            this.options = options;
            this.dataSource = dataSource;
            this.out = out;
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            facts.put(out, Verifier.verify(facts.get(MATCHABLE), facts.get(QUANT), ctx.measured(), dataSource, options,
                    null, ctx.progress()));
        }
    }

    private static final class CheckRules extends BaseStage {
        private final Target target;

        CheckRules(Target target) {
            super("check-rules", List.of(QUANT, ANALYSED), List.of(REPORT));
            this.target = target;
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            facts.put(REPORT, facts.get(ANALYSED).withTarget(targetCheck(facts.get(QUANT).model(), target)));
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
