package dev.qwtonnx.api;

import dev.qwtonnx.Version;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.run.AccuracyOptions;
import dev.qwtonnx.run.CompensateRun;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.RunContext;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The entry point a Java model-conversion pipeline embeds: a float model and calibration data in,
 * a compensated static INT8 QDQ model out, through the same stages as the command line.
 *
 * <pre>
 * QuantizeRun.Result r = QwtOnnx.quantize(ModelIO.load(in), calibration)
 *         .options(QuantizeRun.Options.defaults())   // optional
 *         .log(System.err::println)                  // optional: the stages with their times
 *         .run();
 * ModelIO.save(r.model(), out, in);
 * </pre>
 */
public final class QwtOnnx {
    public static final String TOOL = Version.TOOL;

    private QwtOnnx() {
    }

    /** A quantization of {@code floatModel} on {@code calibration}, run by {@link Quantization#run()}. */
    public static Quantization quantize(Model floatModel, CalibrationSource calibration) {
        return new Quantization(floatModel, calibration);
    }

    /** Shorthand for {@code quantize(floatModel, calib).options(options).progress(progress).log(log).run()}. */
    public static QuantizeRun.Result quantize(Model floatModel, CalibrationSource calib, QuantizeRun.Options options,
            Progress progress, Consumer<String> log) {
        return quantize(floatModel, calib).options(options).progress(progress).log(log).run();
    }

    /** As above, with the held-out samples compensation's output-level acceptance measures on (null: none). */
    public static QuantizeRun.Result quantize(Model floatModel, CalibrationSource calib, CalibrationSource heldOut,
            QuantizeRun.Options options, Progress progress, Consumer<String> log) {
        return quantize(floatModel, calib).heldOut(heldOut).options(options).progress(progress).log(log).run();
    }

    /** One quantization's inputs; everything but the model and the calibration data is optional. */
    public static final class Quantization {
        private final Model floatModel;
        private final CalibrationSource calibration;
        private CalibrationSource heldOut;
        private QuantizeRun.Options options = QuantizeRun.Options.defaults();
        private Progress progress = Progress.NONE;
        private Consumer<String> log;
        private final java.util.List<AccuracyOptions.Goal> goals = new java.util.ArrayList<>();

        private Quantization(Model floatModel, CalibrationSource calibration) {
            this.floatModel = Objects.requireNonNull(floatModel, "floatModel");
            this.calibration = Objects.requireNonNull(calibration, "calibration");
        }

        /** The run's options (default: {@link QuantizeRun.Options#defaults()}). */
        public Quantization options(QuantizeRun.Options o) {
            this.options = Objects.requireNonNull(o, "options");
            return this;
        }

        /**
         * An accuracy target in the application's own metric: layers are returned to float, measured
         * together on the held-out samples (the calibration samples without them), until the mean of
         * {@code metric} over the samples is at least {@code min}; several calls add several bounds.
         * {@link QuantizeRun.Result#accuracy()} says what the search did and whether the target held.
         */
        public Quantization metric(dev.qwtonnx.verify.OutputMetric metric, double min) {
            goals.add(new AccuracyOptions.Goal(null, Objects.requireNonNull(metric, "metric"), min));
            return this;
        }

        /** Samples the run never fits on; compensation's output-level acceptance judges on them. */
        public Quantization heldOut(CalibrationSource samples) {
            this.heldOut = samples;
            return this;
        }

        public Quantization progress(Progress p) {
            this.progress = p == null ? Progress.NONE : p;
            return this;
        }

        /** Where the stages, their times and every decision against a layer are logged. */
        public Quantization log(Consumer<String> l) {
            this.log = l;
            return this;
        }

        public QuantizeRun.Result run() {
            AccuracyOptions accuracy = options.accuracy();
            for (AccuracyOptions.Goal g : goals) {
                accuracy = accuracy.withGoal(g);
            }
            try {
                return QuantizeRun.quantize(floatModel, options.withAccuracy(accuracy),
                        new RunContext(calibration, heldOut, progress, log));
            } finally {
                dev.qwtonnx.calib.OrtRunner.flushBackgroundCloses();
            }
        }
    }

    /**
     * Folds CWAC into a QDQ or QOperator INT8 model made by another tool, given the float model it
     * was made from; {@code heldOut} (null: none) are the samples its output-level acceptance
     * measures on. Nodes, names and order stay exactly as they were.
     */
    public static CompensateRun.Result compensate(Model floatModel, Model theirs, CalibrationSource calib,
            CalibrationSource heldOut, CwacOptions cwac, Progress progress, Consumer<String> log) {
        try {
            return CompensateRun.run(floatModel, theirs, cwac, null, new RunContext(calib, heldOut, progress, log));
        } finally {
            dev.qwtonnx.calib.OrtRunner.flushBackgroundCloses();
        }
    }

    /** As above, with no held-out samples. */
    public static CompensateRun.Result compensate(Model floatModel, Model theirs, CalibrationSource calib,
            CwacOptions cwac, Progress progress, Consumer<String> log) {
        return compensate(floatModel, theirs, calib, null, cwac, progress, log);
    }

    /** The prepared float model quantize works on (checked, prepare passes run), for tools and tests. */
    public static Model prepare(Model model, boolean verifyBetween, Consumer<String> log) {
        return QuantizeRun.prepare(model, verifyBetween, log);
    }

    /** The QOperator form of a QDQ model (explicit integer operators with the same scales and integers). */
    public static Model toQOperator(Model qdq, boolean verifyBetweenPasses, Consumer<String> log) {
        return QuantizeRun.toQOperator(qdq, verifyBetweenPasses, log);
    }

    public static String version() {
        return Version.version();
    }
}
