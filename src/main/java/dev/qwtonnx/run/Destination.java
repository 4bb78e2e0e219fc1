package dev.qwtonnx.run;

import dev.qwtonnx.model.ExternalData;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Where a quantize run writes: the output file and its format, how large weights are stored, the
 * report files (none for no report), and what the report says about the calibration.
 *
 * @param input the input model's file: external data is never written over it, and the report names it
 * @param calibration what the calibration data is, for the report (a folder or file)
 * @param runs timed runs of each model for the report's latency figures
 * @param measureFidelity whether the output's held-out fidelity is measured (for a summary; a report always is)
 */
public record Destination(Path output, Path input, Format format, ExternalData.Policy externalData, List<Path> reports,
        String calibration, int runs, boolean measureFidelity) {
    /** The output's operator form. */
    public enum Format {
        /** QuantizeLinear/DequantizeLinear around float layers. */
        QDQ,
        /** Explicit integer operators (QLinearConv, QLinearMatMul, MatMulIntegerToFloat, QGemm). */
        QOPERATOR
    }

    public Destination {
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(externalData, "externalData");
        reports = List.copyOf(reports);
        measureFidelity |= !reports.isEmpty();
    }
}
