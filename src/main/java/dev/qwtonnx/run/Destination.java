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
 * @param runs timed runs of each model on the first held-out sample for the report's latency; 0 times the
 *     fidelity pass's runs instead
 * @param measureFidelity whether the output's held-out fidelity is measured (for a summary; a report always is)
 * @param layersBefore whether the report also measures each layer of the model before compensation on the
 *     held-out samples (a third model in the per-layer pass); without it the report gives each layer's fit
 *     error before and after compensation on its fitting samples, which compensation measured anyway
 */
public record Destination(Path output, Path input, Format format, ExternalData.Policy externalData, List<Path> reports,
        String calibration, int runs, boolean measureFidelity, boolean layersBefore) {
    /** The output's operator form. */
    public enum Format {
        /** QuantizeLinear/DequantizeLinear around float layers. */
        QDQ,
        /** Explicit integer operators (QLinearConv, QLinearMatMul, MatMulIntegerToFloat, QGemm). */
        QOPERATOR;

        /**
         * The form a target runs fastest: on ORT's CPU provider with 8-bit activations the explicit
         * integer operators, because ORT's QDQ fusion turns a MatMul with a float output into
         * MatMulIntegerToFloat but leaves its bias Add (and a Gelu after it unfused with that bias),
         * where the explicit operator takes the bias (decision 0019); every other target reads QDQ.
         */
        public static Format preferred(dev.qwtonnx.target.Target target) {
            return target.ortCpu() && target.microsoftDomain() && target.activations().bits() == 8 ? QOPERATOR : QDQ;
        }
    }

    public Destination {
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(externalData, "externalData");
        reports = List.copyOf(reports);
        measureFidelity |= !reports.isEmpty();
    }
}
