package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.run.CompensateRun;
import dev.qwtonnx.run.Destination;
import dev.qwtonnx.run.RunContext;
import dev.qwtonnx.run.VerifyRun;
import dev.qwtonnx.verify.Fidelity;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Folds CWAC into an INT8 QDQ or QOperator model another tool made, changing only its scale and bias initializers. */
@Command(name = "compensate", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Fold channel-wise affine compensation into a QDQ or QOperator (QLinearConv/QLinearMatMul) INT8 "
                + "model made by another tool "
                + "(same nodes, names and order; only weight-scale and bias initializers change).")
final class CompensateCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FLOAT", description = "The float ONNX model the INT8 model was made from.")
    Path floatInput;

    @Parameters(index = "1", paramLabel = "INT8", description = "The INT8 QDQ or QOperator model (e.g. from ORT's quantize_static).")
    Path int8Input;

    @Parameters(index = "2", paramLabel = "OUT", description = "Where to write the compensated model (never an input).")
    Path output;

    @CommandLine.Mixin
    CalibrationMixin samples = new CalibrationMixin();

    @CommandLine.Mixin
    CwacMixin cwac = new CwacMixin();

    @CommandLine.Mixin
    HoldOut holdOut = new HoldOut();

    @CommandLine.Mixin
    ExternalDataMixin externalData = new ExternalDataMixin();

    @Option(names = "--target", paramLabel = "NAME", description = "Check the compensated model against a hardware "
            + "target's rules (as verify --target); the fold keeps the form it finds (a per-tensor weight takes shifts "
            + "alone, a float bias takes the shift as a float), so it adds no violation.")
    String target;

    @Option(names = "--quiet", description = "No progress bars and no summary.")
    boolean quiet;

    @Option(names = "--verbose", description = "Log the stages with their times, each layer left alone and why, "
            + "and show stack traces.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        CwacOptions options = cwac.options(CwacOptions.COMPENSATE_STAGES, CwacOptions.Accept.OUTPUT);
        dev.qwtonnx.target.Target t = target == null ? null : dev.qwtonnx.target.Target.named(target);
        if (options.method() == CwacOptions.Method.NONE) {
            throw new QwtException("--method none would change nothing; use bias or cwac");
        }
        holdOut.validate();
        externalData.policy(); // a bad --external-data fails before any work
        QuantizeCommand.checkOutput(output, floatInput);
        QuantizeCommand.checkOutput(output, int8Input);
        samples.check(); // before any model is read
        Model floatModel = ModelFiles.loadNamed(floatInput, spec.commandLine().getErr());
        Model theirs = ModelFiles.load(int8Input, spec.commandLine().getErr());
        // Closed at the end: a text source holds a native tokenizer.
        try (CalibrationSource opened = samples.open(floatModel)) {
            CalibrationSource all = samples.limited(opened, null);
            HoldOut.Split split = holdOut.split(all);
            // Three disjoint parts: the fits, the acceptance of each stage, and the fidelity the summary prints, so that
            // neither the fits nor the choices among them have seen the samples the result is measured on. With nothing
            // held out, the compensator holds out its own share of the calibration samples for acceptance.
            CalibrationSource fitOn = split.fit();
            CalibrationSource acceptance = null;
            if (options.accept() == CwacOptions.Accept.OUTPUT && !split.reused()) {
                HoldOut.Split judged = holdOut.split(split.fit());
                fitOn = judged.fit();
                acceptance = judged.measure();
            }
            Progress progress = quiet || System.console() == null ? Progress.NONE : new BarProgress();
            RunContext ctx = new RunContext(fitOn, split.reused() ? null : split.measure(), progress,
                    verbose ? s -> spec.commandLine().getErr().println("  " + s) : null);
            Destination destination = new Destination(output, int8Input, Destination.Format.QDQ, externalData.policy(),
                    List.of(), samples.source().toString(), 0, !quiet, false);
            CompensateRun.Result r = CompensateRun.run(floatModel, theirs, options, acceptance, destination, ctx);
            // On standard error, as quantize's warnings.
            r.warnings().forEach(spec.commandLine().getErr()::println);
            if (!quiet) {
                summary(out, r, theirs, ctx.measured(), ctx.heldOut() == null, start);
                if (t != null) {
                    dev.qwtonnx.verify.Report.TargetCheck before = VerifyRun.targetCheck(theirs, t);
                    dev.qwtonnx.verify.Report.TargetCheck after = VerifyRun.targetCheck(r.model(), t);
                    out.printf("target %s: %s; rule violations %d before, %d after%n", t.name(), after.note(),
                            before.violations().size(), after.violations().size());
                    after.violations().stream().limit(verbose ? Long.MAX_VALUE : 5).forEach(v -> out.println(
                            "  " + v.rule() + ": " + v.node() + " (" + v.opType() + "): " + v.detail()));
                }
            }
        }
        return 0;
    }

    private void summary(PrintWriter out, CompensateRun.Result r, Model theirs, CalibrationSource heldOut,
            boolean reused, long start) {
        out.printf("compensated %d of %d quantized layers (%s); left as they were: %d%n", r.compensation().changed(),
                r.compensation().layers().size() + r.compensation().skipped().size(), cwac.method,
                r.compensation().skipped().size());
        for (String s : r.compensation().skipped()) {
            out.println("  left: " + s);
        }
        for (Compensator.StageChoice c : r.compensation().choices()) {
            if (c.choice() != Compensator.Choice.FIT || c.outputScale() != 1) {
                Double withFit = c.errors().get(Compensator.Choice.FIT);
                out.printf("  stage %d (%s%s): %s%s, output error %.4g -> %.4g (%s)%n", c.stage(),
                        c.layers().get(0), c.layers().size() > 1 ? " and " + (c.layers().size() - 1) + " more" : "",
                        c.outputScale() != 1 ? String.format("requantization y_scale x%.2f, ", c.outputScale()) : "",
                        switch (c.choice()) {
                            case NONE -> "fit left out";
                            case SHIFT -> "shift only";
                            case FIT -> "fit kept";
                        }, c.errorBefore(), c.errorAfter(), withFit == null || withFit.isNaN()
                                ? "the fit no better on half the acceptance samples"
                                : String.format("with the fit %.4g", withFit));
            }
        }
        if (!r.compensation().choices().isEmpty()) {
            List<Compensator.StageChoice> cs = r.compensation().choices();
            out.printf("output error on %d acceptance samples the fits did not use: %.4g -> %.4g (%d of %d stages kept "
                    + "their fit, %d their shift only; %d requantization scales refitted; each kept only where its gain "
                    + "exceeds the noise between samples)%n", r.compensation().acceptanceSamples(),
                    cs.get(0).errorBefore(), cs.get(cs.size() - 1).errorAfter(),
                    cs.stream().filter(c -> c.choice() == Compensator.Choice.FIT).count(), cs.size(),
                    cs.stream().filter(c -> c.choice() == Compensator.Choice.SHIFT).count(),
                    cs.stream().filter(c -> c.outputScale() != 1).count());
        }
        double before = r.compensation().sseBefore();
        double after = r.compensation().sseAfter();
        if (before > 0) {
            out.printf("calibration error of compensated layers: %.4g -> %.4g (%.1f%% lower)%n", before, after,
                    100 * (1 - after / before));
        }
        List<Fidelity.OutputFidelity> was = r.fidelityBefore();
        List<Fidelity.OutputFidelity> now = r.fidelityAfter();
        String measuredOn = dev.qwtonnx.model.MeasuredOutputs.note(r.floatModel());
        if (!measuredOn.isEmpty()) {
            out.println("note: " + measuredOn);
        }
        out.printf("fidelity on %d %s, before -> after:%n", heldOut.size(),
                reused ? "calibration samples (no hold-out)" : "held-out samples (neither fitted nor judged on)");
        for (int i = 0; i < now.size(); i++) {
            out.printf("  %s: SQNR %.2f -> %.2f dB, cosine %.5f -> %.5f%n", now.get(i).output(), was.get(i).meanSqnrDb(),
                    now.get(i).meanSqnrDb(), was.get(i).meanCosine(), now.get(i).meanCosine());
        }
        if (r.compensation().onGrid()) {
            out.println("note: on this CPU (x86 without VNNI) ORT's u8*s8 kernels saturate this model's full-range int8 "
                    + "weights; compensation measured the quantization grid, which CPUs with VNNI or a dot product "
                    + "compute, and the figures above are this CPU's kernels");
        }
        boolean sameNodes = theirs.graph().getNodeList().equals(r.model().graph().getNodeList());
        out.printf("nodes identical to the input model: %s; ORT integer kernels: %d before, %d after%n",
                sameNodes ? "yes" : "no", OrtKernels.count(OrtKernels.optimizedOpCounts(theirs), OrtKernels.INTEGER_OPS),
                OrtKernels.count(OrtKernels.optimizedOpCounts(r.model()), OrtKernels.INTEGER_OPS));
        out.printf("wrote %s in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
    }
}
