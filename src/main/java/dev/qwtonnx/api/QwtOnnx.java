package dev.qwtonnx.api;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.QuantOptions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The public entry point: float model and calibration data in, compensated static INT8 QDQ model
 * out. Embeddable as a step of a Java model-conversion pipeline.
 *
 * <pre>
 * Model out = QwtOnnx.quantize(ModelIO.load(in), calib, QwtOnnx.Options.defaults(), Progress.NONE, log).model();
 * </pre>
 */
public final class QwtOnnx {
    public static final String TOOL = "qwt-onnx";

    private QwtOnnx() {
    }

    /** Every option of a quantization run, validated where each part is built. */
    public record Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses, CalibOptions calib) {
        public Options {
            java.util.Objects.requireNonNull(calib, "calib");
        }

        /** Options with the default calibration (MinMax). */
        public Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses) {
            this(quant, cwac, verifyBetweenPasses, CalibOptions.defaults());
        }

        public static Options defaults() {
            return new Options(QuantOptions.defaults(), CwacOptions.defaults(), false, CalibOptions.defaults());
        }

        public Options withCwac(CwacOptions c) {
            return new Options(quant, c, verifyBetweenPasses, calib);
        }

        public Options withQuant(QuantOptions q) {
            return new Options(q, cwac, verifyBetweenPasses, calib);
        }

        public Options withCalib(CalibOptions c) {
            return new Options(quant, cwac, verifyBetweenPasses, c);
        }
    }

    /**
     * The run's products: the output model, the prepared float model it is compared with, the
     * quantized model before compensation, the plan and the compensation's fits.
     */
    public record Result(Model model, Model prepared, Model uncompensated, LayerMatcher.Result plan,
            Compensator.Result compensation, Duration calibrateTime, Duration compensateTime) {
    }

    /** The prepare passes: constants to initializers, opset 13, BatchNorm folded, unique node names. */
    public static Pipeline preparePipeline(boolean verifyBetween) {
        return new Pipeline(List.of(new ConstantToInitializer(), new OpsetUpgrade(13), new FoldBatchNorm(),
                new NameNodes()), verifyBetween);
    }

    public static Model prepare(Model model, boolean verifyBetween, Consumer<String> log) {
        ModelChecker.check(model);
        return preparePipeline(verifyBetween).run(model, log);
    }

    public static Result quantize(Model floatModel, CalibrationSource calib, Options options, Progress progress,
            Consumer<String> log) {
        if (calib.size() == 0) {
            throw new QwtException("the calibration set is empty");
        }
        Consumer<String> say = log == null ? s -> { } : log;
        Model prepared = prepare(floatModel, options.verifyBetweenPasses(), say);
        LayerMatcher.Result plan = LayerMatcher.match(prepared, options.quant());
        for (String r : plan.rejected()) {
            say.accept("left in float: " + r);
        }
        if (plan.layers().isEmpty()) {
            throw new QwtException("the model has no Conv, MatMul or Gemm layer with a constant weight to quantize");
        }
        long t0 = System.nanoTime();
        CalibOptions co = options.calib();
        Map<String, RangeMethod> methods = co.overrides().resolve(prepared.graph(), plan.tensorsToCalibrate(),
                co.method());
        if (!co.overrides().isEmpty()) {
            methods.forEach((t, m) -> say.accept("range of '" + t + "': " + m.label()));
        }
        Map<String, Range> ranges = new RangeCalibrator(t -> co.observer(methods.get(t)), co.batch())
                .calibrate(prepared, methods.keySet(), calib, progress);
        Model quantized = new Pipeline(List.of(new QdqQuantizer(options.quant(), plan.layers(), ranges)),
                options.verifyBetweenPasses()).run(prepared, say);
        long t1 = System.nanoTime();
        Compensator.Result comp = new Compensator(options.cwac()).compensate(prepared, quantized, calib, progress);
        long t2 = System.nanoTime();
        Model out = withProvenance(comp.model(), options);
        ModelChecker.check(out);
        return new Result(out, prepared, quantized, plan, comp, Duration.ofNanos(t1 - t0), Duration.ofNanos(t2 - t1));
    }

    /** Records the tool, its version and the options in the model's metadata. */
    public static Model withProvenance(Model model, Options options) {
        ModelProto.Builder b = model.proto().toBuilder();
        put(b, "qwt.tool", TOOL);
        put(b, "qwt.version", version());
        put(b, "qwt.options", options.quant() + " " + options.cwac() + " " + options.calib());
        return new Model(b.build());
    }

    private static void put(ModelProto.Builder b, String key, String value) {
        for (int i = 0; i < b.getMetadataPropsCount(); i++) {
            if (b.getMetadataProps(i).getKey().equals(key)) {
                b.setMetadataProps(i, StringStringEntryProto.newBuilder().setKey(key).setValue(value));
                return;
            }
        }
        b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(key).setValue(value));
    }

    public static String version() {
        String v = QwtOnnx.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }
}
