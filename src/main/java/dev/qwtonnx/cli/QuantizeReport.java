package dev.qwtonnx.cli;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.verify.Report;
import dev.qwtonnx.verify.ReportWriter;
import dev.qwtonnx.verify.Verifier;
import java.nio.file.Path;
import java.util.List;

/** The report quantize writes next to its output: where it goes, and what quantize adds to verify's. */
final class QuantizeReport {
    private QuantizeReport() {
    }

    /** The report files: the one asked for, none, or OUT.report.html and OUT.report.json next to OUT. */
    static List<Path> paths(Path output, Path report, boolean noReport) {
        if (noReport) {
            return List.of();
        }
        if (report != null) {
            VerifyCommand.checkReportPath(report);
            return List.of(report);
        }
        String name = output.getFileName().toString();
        String base = name.toLowerCase(java.util.Locale.ROOT).endsWith(".onnx") ? name.substring(0, name.length() - 5)
                : name;
        return List.of(output.resolveSibling(base + ".report.html"), output.resolveSibling(base + ".report.json"));
    }

    static void write(List<Path> reports, QwtOnnx.Result r, Path input, Path output, CalibrationSource heldOut,
            boolean reused, Path calib, int calibSamples, String method, int runs, Progress progress) {
        if (reports.isEmpty()) {
            return;
        }
        Report report = Verifier.verify(new Verifier.Subject(r.prepared(), input), new Verifier.Subject(r.model(), output),
                heldOut, calib + (reused ? " (the calibration samples; none held out)" : " (held-out samples)"),
                new Verifier.Options(runs), new Verifier.QuantizeRun(r.uncompensated(), r.compensation(), method,
                        calib.toString(), calibSamples), progress);
        for (Path p : reports) {
            ReportWriter.write(report, p);
        }
    }
}
