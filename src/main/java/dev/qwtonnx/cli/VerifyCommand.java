package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.run.RunContext;
import dev.qwtonnx.run.VerifyRun;
import dev.qwtonnx.verify.runtime.ForeignRuntime;
import dev.qwtonnx.verify.runtime.Platform;
import dev.qwtonnx.verify.runtime.RuntimeCheck;
import dev.qwtonnx.target.Rule;
import dev.qwtonnx.target.Target;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.Report;
import dev.qwtonnx.verify.ReportWriter;
import dev.qwtonnx.verify.Verifier;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Compares any float model with any int8 model of the same inputs and outputs, and reports. */
@Command(name = "verify", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Compare a float ONNX model with an int8 one (ours or another tool's; QDQ or dynamic): "
                + "output and per-layer fidelity, what ORT runs, size and latency.")
final class VerifyCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FLOAT", description = "The float ONNX model.")
    Path floatPath;

    @Parameters(index = "1", paramLabel = "INT8", description = "The quantized ONNX model.")
    Path quantPath;

    @CommandLine.Mixin
    CalibrationMixin data = new CalibrationMixin("--data");

    @Option(names = "--report", paramLabel = "PATH", description = "Write the report to PATH (.html or .json).")
    Path report;

    @Option(names = "--runs", defaultValue = "20", paramLabel = "N",
            description = "Timed runs of each model for the latency figures; 0 skips timing (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--target", paramLabel = "NAME",
            description = "Also check the INT8 model against a hardware target's rules (the violations are findings, "
                    + "the exit code stays 0): ${COMPLETION-CANDIDATES}.", completionCandidates = TargetNames.class)
    String target;

    @Option(names = "--run-on-target", paramLabel = "N", arity = "0..1", fallbackValue = "4",
            description = "With --target: also run the INT8 model on the first N samples (4) on the target's runtimes "
                    + "this machine has (qemu-x86_64 -cpu Haswell, qemu-aarch64, onnxruntime-web in Node): fidelity, "
                    + "integer kernels and latency there.")
    Integer runOnTarget;

    @Option(names = "--quiet", description = "No progress bars and no summary.")
    boolean quiet;

    @Option(names = "--verbose", description = "Log the stages with their times, and show stack traces.")
    boolean verbose;

    @Override
    public Integer call() {
        Verifier.Options options = new Verifier.Options(runs);
        Target t = target == null ? null : Target.named(target);
        if (report != null) {
            checkReportPath(report);
        }
        data.check(); // before any model is read
        Model floatModel = ModelFiles.loadNamed(floatPath, spec.commandLine().getErr());
        Model quantModel = ModelFiles.loadNamed(quantPath, spec.commandLine().getErr());
        // Closed at the end: a text source holds a native tokenizer.
        try (CalibrationSource opened = data.open(floatModel)) {
            CalibrationSource samples = data.limited(opened, null);
            Progress progress = quiet || System.console() == null ? Progress.NONE : new BarProgress();
            Report r = VerifyRun.run(new Verifier.Subject(floatModel, floatPath), new Verifier.Subject(quantModel, quantPath),
                    options, data.source().toString(), report, t, new RunContext(samples, null, progress,
                            verbose ? s -> spec.commandLine().getErr().println("  " + s) : null));
            if (!quiet) {
                String measuredOn = dev.qwtonnx.model.MeasuredOutputs.note(floatModel);
                if (!measuredOn.isEmpty()) {
                    spec.commandLine().getOut().println("note: " + measuredOn);
                }
                summary(spec.commandLine().getOut(), r, report, verbose);
            }
            if (runOnTarget != null) {
                if (t == null) {
                    throw new QwtException("--run-on-target needs --target NAME");
                }
                runOnTarget(spec.commandLine().getOut(), t, floatModel, quantModel,
                        CalibrationSources.limit(samples, runOnTarget, null));
            }
        }
        return 0;
    }

    /** The int8 model run on each of the target's runtimes this machine has; why not, for the others. */
    private static void runOnTarget(PrintWriter out, Target t, Model floatModel, Model quantModel,
            CalibrationSource samples) {
        List<Platform> platforms = VerifyRun.platforms(t);
        if (platforms.isEmpty()) {
            out.println("target " + t.name() + ": no runtime of its own here"
                    + (t.runtime() == Target.Runtime.RULES_ONLY ? " (" + VerifyRun.RULES_ONLY_NOTE + ")" : ""));
        }
        List<Platform> runs = new java.util.ArrayList<>();
        if (!platforms.isEmpty()) {
            runs.add(Platform.NATIVE); // the same samples here, to compare with
        }
        runs.addAll(platforms);
        for (Platform p : runs) {
            ForeignRuntime.Availability a = ForeignRuntime.of(p).availability();
            if (!a.available()) {
                out.println(p.description() + ": not available here: " + a.why());
                continue;
            }
            RuntimeCheck.check(floatModel, quantModel, samples, p).lines().forEach(out::println);
        }
    }

    /** The built-in target names, for the help. */
    static final class TargetNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Target.names().iterator();
        }
    }

    /** A few lines a person reads in a terminal; the report has the rest. */
    static void summary(PrintWriter out, Report r, Path report) {
        summary(out, r, report, false);
    }

    /** As {@link #summary(PrintWriter, Report, Path)}; {@code allViolations} lists every rule violation. */
    static void summary(PrintWriter out, Report r, Path report, boolean allViolations) {
        for (Fidelity.OutputFidelity o : r.outputs()) {
            out.println("output " + o);
        }
        Report.Layers l = r.layers();
        out.printf(Locale.ROOT, "layers: %d quantized, %d matched to the float model%s%s%n", l.found(), l.matched(),
                l.inSubgraphs() == 0 ? "" : String.format(Locale.ROOT, "; %d more inside If/Loop/Scan subgraphs, not "
                        + "measured per layer", l.inSubgraphs()),
                l.layers().isEmpty() ? "" : ", worst own error:");
        for (Report.LayerFidelity f : l.layers().subList(0, Math.min(3, l.layers().size()))) {
            out.printf(Locale.ROOT, "  %s %s: SQNR %.2f dB%s%s%n", f.opType(), f.node(), f.sqnrDb(),
                    f.localSqnrDb() == null ? "" : String.format(Locale.ROOT, ", own %.2f dB", f.localSqnrDb()),
                    f.fused() ? "" : " (not fused)");
        }
        out.printf("ORT integer kernels: %d; quantized layers left in float: %d%n",
                r.runtime().quantizedModel().integerKernels(), r.runtime().unfused().size());
        for (Report.Unfused u : r.runtime().unfused()) {
            out.println("  " + u.opType() + " " + u.node() + ": " + u.reason());
        }
        Report.Cost c = r.cost();
        out.printf(Locale.ROOT, "size: %d -> %d bytes (%.3f)", c.floatBytes(), c.quantizedBytes(), c.sizeRatio());
        if (c.quantizedLatency() != null) {
            out.printf(Locale.ROOT, "; latency median %.3f -> %.3f ms over %d %s (%.2fx)", c.floatLatency().medianMs(),
                    c.quantizedLatency().medianMs(), c.runs(), c.latencySample() == null ? "samples" : "runs", c.speedup());
        }
        out.println();
        if (r.target() != null) {
            targetSummary(out, r.target(), allViolations);
        }
        if (report != null) {
            out.println("wrote " + report);
        }
    }

    /** One line per rule broken: how many nodes, a few of them, and the rule's source; every node when asked. */
    static void targetSummary(PrintWriter out, Report.TargetCheck t, boolean all) {
        out.println("target " + t.name() + ": " + t.note());
        Map<String, List<Report.RuleViolation>> byRule = new LinkedHashMap<>();
        for (Report.RuleViolation v : t.violations()) {
            byRule.computeIfAbsent(v.rule(), k -> new ArrayList<>()).add(v);
        }
        out.printf("rule violations: %d of %d rules broken, %d nodes%n", byRule.size(), t.rules().size(),
                t.violations().size());
        for (Map.Entry<String, List<Report.RuleViolation>> e : byRule.entrySet()) {
            Rule rule = t.rules().stream().filter(x -> x.id().equals(e.getKey())).findFirst().orElseThrow();
            List<Report.RuleViolation> vs = e.getValue();
            List<String> examples = vs.subList(0, Math.min(3, vs.size())).stream().map(Report.RuleViolation::node).toList();
            out.printf("  %s (%d): %s; e.g. %s%s%n", rule.id(), vs.size(), rule.text(), String.join(", ", examples),
                    vs.size() > examples.size() ? ", ..." : "");
            out.println("    source: " + rule.source());
            if (all) {
                for (Report.RuleViolation v : vs) {
                    out.println("    " + v.opType() + " " + v.node() + ": " + v.detail());
                }
            }
        }
    }

    /** Fails early, before any work, on a report path that cannot be written. */
    static void checkReportPath(Path p) {
        ReportWriter.Format.of(p);
        Path dir = p.toAbsolutePath().normalize().getParent();
        if (dir == null || !java.nio.file.Files.isDirectory(dir)) {
            throw new QwtException("report folder does not exist: " + dir);
        }
    }
}
