package dev.qwtonnx.cli;

import java.nio.file.Path;
import java.util.List;

/** Where quantize's report goes: the path asked for, none, or two files next to the output. */
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
}
