package dev.qwtonnx.api;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.cwac.ForeignLayers;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.quant.GptqRounder;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QOperatorLowering;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.QuantizedWeight;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.quant.WeightRounding;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
            Compensator.Result compensation, Duration calibrateTime, Duration compensateTime,
            List<Sensitivity.LayerError> keptFloat) {
    }

    /** Samples the per-layer sensitivity analysis runs on: enough to rank layers, cheap enough to run per layer. */
    static final int SENSITIVITY_SAMPLES = 16;

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
        return quantize(floatModel, calib, null, options, progress, log);
    }

    /**
     * As {@link #quantize(Model, CalibrationSource, Options, Progress, Consumer)}, with the samples
     * compensation's output-level acceptance ({@code --accept output}) measures on (null: the
     * calibration samples).
     */
    public static Result quantize(Model floatModel, CalibrationSource calib, CalibrationSource acceptance,
            Options options, Progress progress, Consumer<String> log) {
        if (calib.size() == 0) {
            throw new QwtException("the calibration set is empty");
        }
        refuseQuantized(floatModel);
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
        Map<String, QuantizedWeight> rounded = options.quant().effectiveRounding() == WeightRounding.GPTQ
                ? GptqRounder.round(prepared, plan.layers(), options.quant(), calib, progress) : Map.of();
        List<Sensitivity.LayerError> keptFloat = List.of();
        if (options.quant().floatBudget() > 0) {
            List<Sample> few = new ArrayList<>();
            for (Sample s : calib) {
                if (few.size() == SENSITIVITY_SAMPLES) {
                    break;
                }
                few.add(s);
            }
            List<Sensitivity.LayerError> ranked = Sensitivity.rank(prepared, plan.layers(), ranges, rounded,
                    options.quant(), few, progress);
            keptFloat = List.copyOf(ranked.subList(0, Math.min(options.quant().floatBudget(), ranked.size())));
            Set<String> keep = new LinkedHashSet<>(options.quant().keepFloat());
            for (Sensitivity.LayerError e : keptFloat) {
                keep.add(e.layer());
                say.accept(String.format("kept in float (budget): %s, relative output error %.3g when quantized alone",
                        e.layer(), e.relativeError()));
            }
            plan = LayerMatcher.match(prepared, options.quant().withKeepFloat(keep));
            if (plan.layers().isEmpty()) {
                throw new QwtException("the float budget of " + options.quant().floatBudget()
                        + " layers leaves no layer to quantize");
            }
        }
        Model quantized = new Pipeline(List.of(new QdqQuantizer(options.quant(), plan.layers(), ranges, rounded)),
                options.verifyBetweenPasses()).run(prepared, say);
        long t1 = System.nanoTime();
        Compensator.Result comp = new Compensator(options.cwac()).compensate(prepared, quantized, calib, acceptance,
                progress);
        long t2 = System.nanoTime();
        Model out = withProvenance(comp.model(), options);
        ModelChecker.check(out);
        return new Result(out, prepared, quantized, plan, comp, Duration.ofNanos(t1 - t0), Duration.ofNanos(t2 - t1),
                keptFloat);
    }

    private static final java.util.Set<String> QUANTIZED_OPS = java.util.Set.of("QuantizeLinear", "DequantizeLinear",
            "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QGemm", "MatMulIntegerToFloat",
            "DynamicQuantizeMatMul");

    /** An already quantized model would be quantized twice; the user should give the float original. */
    private static void refuseQuantized(Model model) {
        for (dev.qwtonnx.onnx.NodeProto n : model.graph().getNodeList()) {
            if (QUANTIZED_OPS.contains(n.getOpType()) || n.getOpType().startsWith("QLinear")) {
                throw new QwtException("the model is already quantized (" + dev.qwtonnx.model.Nodes.describe(n)
                        + "); give the float model");
            }
        }
    }

    /** What {@code compensate} returns: the compensated model, the fits, and the layers it left alone. */
    public record CompensateResult(Model model, Model floatModel, Compensator.Result compensation) {
    }

    /**
     * Folds CWAC into a QDQ or QOperator INT8 model made by another tool, given the float model it was made from:
     * layers are paired by weights ({@link ForeignLayers}), measured, fitted and folded into their
     * own weight-scale and bias initializers. Nodes, names and order stay exactly as they were.
     */
    public static CompensateResult compensate(Model floatModel, Model theirs, CalibrationSource calib, CwacOptions cwac,
            Progress progress, Consumer<String> log) {
        return compensate(floatModel, theirs, calib, null, cwac, progress, log);
    }

    /**
     * As {@link #compensate(Model, Model, CalibrationSource, CwacOptions, Progress, Consumer)}, with
     * the samples output-level acceptance ({@link CwacOptions.Accept#OUTPUT}) measures on (null: the
     * calibration samples).
     */
    public static CompensateResult compensate(Model floatModel, Model theirs, CalibrationSource calib,
            CalibrationSource acceptance, CwacOptions cwac, Progress progress, Consumer<String> log) {
        if (calib.size() == 0) {
            throw new QwtException("the calibration set is empty");
        }
        Consumer<String> say = log == null ? s -> { } : log;
        ModelChecker.check(floatModel);
        ModelChecker.check(theirs);
        // Weights held in Constant nodes become initializers so they can be compared; the float model is only measured.
        Model reference = new Pipeline(List.of(new ConstantToInitializer()), false).run(floatModel, say);
        ForeignLayers.Result mapped = ForeignLayers.map(reference, theirs);
        for (String s : mapped.skipped()) {
            say.accept("left as it was: " + s);
        }
        if (mapped.layers().isEmpty()) {
            throw new QwtException("no quantized layer of the INT8 model could be paired with a layer of the float model"
                    + (mapped.skipped().isEmpty() ? "" : " (first: " + mapped.skipped().get(0) + ")"));
        }
        Compensator.Result comp = new Compensator(cwac).compensate(reference, theirs, mapped.layers(), mapped.floats(),
                mapped.skipped(), calib, acceptance, progress);
        ModelChecker.check(comp.model());
        return new CompensateResult(comp.model(), reference, comp);
    }

    /**
     * The QOperator form of a QDQ model: explicit integer operators with the same scales, zero
     * points, integer weights and biases (see {@link QOperatorLowering}).
     */
    public static Model toQOperator(Model qdq, boolean verifyBetweenPasses, Consumer<String> log) {
        Model out = new Pipeline(List.of(new QOperatorLowering()), verifyBetweenPasses).run(qdq, log == null ? s -> { } : log);
        ModelChecker.check(out);
        return out;
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
