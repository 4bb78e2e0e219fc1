package dev.qwtonnx.run;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * What every stage of one run may use besides the facts: the calibration samples, the held-out
 * samples (null when none are held out), progress, the log and the diagnostics collected.
 */
public record RunContext(CalibrationSource calibration, CalibrationSource heldOut, Progress progress,
        Consumer<String> log, Diagnostics diagnostics) {
    public RunContext {
        Objects.requireNonNull(calibration, "calibration");
        progress = progress == null ? Progress.NONE : progress;
        log = log == null ? s -> { } : log;
        diagnostics = diagnostics == null ? new Diagnostics() : diagnostics;
    }

    public RunContext(CalibrationSource calibration, CalibrationSource heldOut, Progress progress, Consumer<String> log) {
        this(calibration, heldOut, progress, log, new Diagnostics());
    }

    /** The samples fidelity is measured on: the held-out ones, or the calibration set when none are held out. */
    public CalibrationSource measured() {
        return heldOut != null ? heldOut : calibration;
    }

    /** The same run on other samples (an If branch's), logging with a prefix. */
    public RunContext on(CalibrationSource samples, String logPrefix) {
        Consumer<String> outer = log;
        return new RunContext(samples, null, progress, s -> outer.accept(logPrefix + s), diagnostics);
    }

    /** Records a decision against {@code subject}. */
    public void reject(String stage, String subject, String why) {
        diagnostics.add(stage, subject, why);
    }
}
