package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.ACCURACY;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION;
import static dev.qwtonnx.run.QuantizeRun.DESTINATION;
import static dev.qwtonnx.run.QuantizeRun.FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.LATENCY;
import static dev.qwtonnx.run.QuantizeRun.LAYER_FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.OPTIMIZED;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;
import static dev.qwtonnx.run.QuantizeRun.WARNINGS;

import dev.qwtonnx.verify.Report;
import dev.qwtonnx.verify.ReportWriter;
import dev.qwtonnx.verify.Verifier;
import java.nio.file.Path;
import java.util.List;

/**
 * The report next to the output: verify's analysis of the QDQ model against the prepared float
 * model on the held-out samples, with what only quantize knows (the model before compensation, the
 * fits), reusing the output fidelity, its timed runs and ORT's optimized graph already made.
 */
final class ReportStage extends QuantizeStage {
    ReportStage(QuantizeRun.Options options) {
        super("report", options, List.of(PREPARED, QUANTIZED, COMPENSATION, OUTPUT, FIDELITY, OPTIMIZED,
                DESTINATION, ACCURACY, WARNINGS, LAYER_FIDELITY, LATENCY), List.of());
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Destination d = facts.get(DESTINATION);
        if (d.reports().isEmpty()) {
            return;
        }
        boolean reused = ctx.heldOut() == null;
        // The report is of the written model, which the summary's fidelity and ORT graph already measured; a
        // lowered layer keeps its QDQ node's name, so the fits and the uncompensated model's layers pair by name.
        Report report = Verifier.verify(new Verifier.Subject(facts.get(PREPARED), d.input()),
                new Verifier.Subject(facts.get(OUTPUT), d.output()), ctx.measured(),
                d.calibration() + (reused ? " (the calibration samples; none held out)" : " (held-out samples)"),
                new Verifier.Options(d.runs(), false), // ORT's graph of the int8 model only (decision 0027)
                new Verifier.QuantizeRun(facts.get(QUANTIZED), facts.get(COMPENSATION),
                        options.cwac().method().name().toLowerCase(java.util.Locale.ROOT), d.calibration(),
                        ctx.calibration().size(), facts.get(FIDELITY), facts.get(OPTIMIZED),
                        ctx.diagnostics().reasons().stream()
                                .map(r -> new Report.Decision(r.stage(), r.subject(), r.why())).toList(),
                        accuracy(facts.get(ACCURACY), facts.get(WARNINGS)),
                        facts.get(LAYER_FIDELITY).measured() ? facts.get(LAYER_FIDELITY).figures() : null,
                        facts.get(LAYER_FIDELITY).before(), facts.get(LATENCY).orElse(null),
                        facts.get(LAYER_FIDELITY).matched()),
                ctx.progress());
        for (Path p : d.reports()) {
            ReportWriter.write(report, p);
        }
    }

    private static Report.Accuracy accuracy(AccuracySearch s, List<String> warnings) {
        boolean target = s.hasTarget();
        return new Report.Accuracy(s.target(), target ? s.met() : null, target ? s.figure() : null,
                target ? s.samples() : null, s.returned().stream()
                        .map(r -> new Report.Returned(r.layer(), r.before(), r.after())).toList(), warnings);
    }
}
