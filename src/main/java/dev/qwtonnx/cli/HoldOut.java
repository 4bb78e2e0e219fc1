package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import java.util.List;
import picocli.CommandLine.Option;

/** The hold-out split shared by quantize and compensate: fit on one part, measure fidelity on the other. */
final class HoldOut {
    @Option(names = "--holdout", defaultValue = "0.2", paramLabel = "F",
            description = "Fraction of the calibration samples held out to measure fidelity (default: ${DEFAULT-VALUE}).")
    double fraction;

    @Option(names = "--seed", defaultValue = "1",
            description = "Seed of the hold-out split and of quantize's --shuffle (default: ${DEFAULT-VALUE}).")
    long seed;

    /**
     * The samples to fit on and those to measure on; with fewer than two samples, or no hold-out,
     * both are the whole set ({@code reused}).
     */
    record Split(CalibrationSource fit, CalibrationSource measure) {
        boolean reused() {
            return measure == fit;
        }
    }

    /** Checked before any work, so that a bad fraction costs no calibration. */
    void validate() {
        if (!(fraction >= 0 && fraction < 1)) {
            throw new QwtException("--holdout must be in [0, 1), got " + fraction);
        }
    }

    Split split(CalibrationSource all) {
        List<CalibrationSource> parts = all.size() >= 2 && fraction > 0 ? CalibrationSources.split(all, fraction, seed)
                : List.of(all, all);
        CalibrationSource fit = parts.get(0);
        return new Split(fit, parts.get(1).size() > 0 ? parts.get(1) : fit);
    }
}
