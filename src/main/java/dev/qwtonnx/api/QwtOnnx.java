package dev.qwtonnx.api;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.Version;
import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.cwac.FloatPrefix;
import dev.qwtonnx.cwac.FloatReference;
import dev.qwtonnx.cwac.ForeignLayers;
import dev.qwtonnx.cwac.WeightResiduals;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.DropValueInfo;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.FoldConstantChains;
import dev.qwtonnx.prepare.InitializerInputs;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.prepare.RemoveUnusedInitializers;
import dev.qwtonnx.quant.FullRankMatMulBias;
import dev.qwtonnx.quant.GptqRounder;
import dev.qwtonnx.quant.Int32MatMulBias;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.QOperatorLowering;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.QuantizedWeight;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.quant.WeightRounding;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The public entry point: float model and calibration data in, compensated static INT8 QDQ model
 * out. Embeddable as a step of a Java model-conversion pipeline.
 *
 * <pre>
 * Model out = QwtOnnx.quantize(ModelIO.load(in), calib, QwtOnnx.Options.defaults(), Progress.NONE, log).model();
 * </pre>
 */
public final class QwtOnnx {
    public static final String TOOL = Version.TOOL;

    private QwtOnnx() {
    }

    /**
     * Every option of a quantization run, validated where each part is built. {@code targetOpset}
     * is the opset the model is upgraded to before quantizing (13 up to {@link OpsetUpgrade#MAX_TARGET};
     * a model already above it keeps its own).
     */
    public record Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses, CalibOptions calib,
            long targetOpset) {
        public Options {
            java.util.Objects.requireNonNull(calib, "calib");
            OpsetUpgrade.checkTarget(targetOpset);
        }

        public Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses, CalibOptions calib) {
            this(quant, cwac, verifyBetweenPasses, calib, OpsetUpgrade.TARGET);
        }

        /** Options with the default calibration (MinMax). */
        public Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses) {
            this(quant, cwac, verifyBetweenPasses, CalibOptions.defaults());
        }

        public static Options defaults() {
            return new Options(QuantOptions.defaults(), CwacOptions.defaults(), false, CalibOptions.defaults());
        }

        public Options withCwac(CwacOptions c) {
            return new Options(quant, c, verifyBetweenPasses, calib, targetOpset);
        }

        public Options withQuant(QuantOptions q) {
            return new Options(q, cwac, verifyBetweenPasses, calib, targetOpset);
        }

        public Options withCalib(CalibOptions c) {
            return new Options(quant, cwac, verifyBetweenPasses, c, targetOpset);
        }

        public Options withTargetOpset(long opset) {
            return new Options(quant, cwac, verifyBetweenPasses, calib, opset);
        }
    }

    /**
     * The run's products: the output model, the prepared float model it is compared with, the
     * quantized model before compensation, the plan and the compensation's fits.
     */
    public record Result(Model model, Model prepared, Model uncompensated, LayerMatcher.Result plan,
            Compensator.Result compensation, Duration calibrateTime, Duration compensateTime,
            List<Sensitivity.LayerError> keptFloat, List<IfBranch> ifBranches, List<LoopBody> loopBodies) {
        /** Layers quantized inside If branches (the plan lists the top-level ones). */
        public int branchLayers() {
            return ifBranches.stream().mapToInt(b -> b.result() == null ? 0 : b.result().plan().layers().size()
                    + b.result().branchLayers() + b.result().loopLayers()).sum();
        }

        /** Layers left in float inside If branches (a whole branch when it could not be quantized). */
        public int branchFloatLayers() {
            return ifBranches.stream().mapToInt(b -> b.result() == null ? b.layers() : b.result().plan().rejected().size()
                    + b.result().branchFloatLayers() + b.result().loopFloatLayers()).sum();
        }

        /** Layers quantized inside Loop and Scan bodies (not those of If branches: see {@link #branchLayers}). */
        public int loopLayers() {
            return loopBodies.stream().mapToInt(b -> b.quantized().size()).sum();
        }

        /** Layers left in float inside Loop and Scan bodies. */
        public int loopFloatLayers() {
            return loopBodies.stream().mapToInt(b -> b.leftFloat().size()).sum();
        }
    }

    /**
     * One Loop or Scan body (nested ones listed on their own): the layers quantized inside it
     * (calibrated and compensated over all iterations), those left in float with the reason, and
     * what it says.
     */
    public record LoopBody(String node, String op, List<String> quantized, List<String> leftFloat, String summary) {
    }

    /**
     * One branch of a top-level If node: the run that quantized it as a model of its own (null
     * when it was left in float), how many calibration samples took it, its Conv/MatMul/Gemm
     * count, and what it says.
     */
    public record IfBranch(String ifNode, String branch, int samples, int layers, Result result, String summary) {
    }

    /** Samples the per-layer sensitivity analysis runs on: enough to rank layers, cheap enough to run per layer. */
    static final int SENSITIVITY_SAMPLES = 16;

    /**
     * The prepare passes: inputs shadowing initializers dropped, constants to initializers, opset 13,
     * constant Identity/Cast/Reshape/Transpose chains folded, BatchNorm folded, unique node names,
     * value_info hints dropped, unused initializers removed.
     */
    public static Pipeline preparePipeline(boolean verifyBetween) {
        return preparePipeline(verifyBetween, OpsetUpgrade.TARGET);
    }

    /** The prepare passes, upgrading to {@code targetOpset} (13..{@link OpsetUpgrade#MAX_TARGET}). */
    public static Pipeline preparePipeline(boolean verifyBetween, long targetOpset) {
        return new Pipeline(List.of(new InitializerInputs(), new ConstantToInitializer(), new OpsetUpgrade(targetOpset),
                new FoldConstantChains(), new FoldBatchNorm(), new NameNodes(), new DropValueInfo(),
                new RemoveUnusedInitializers()), verifyBetween);
    }

    public static Model prepare(Model model, boolean verifyBetween, Consumer<String> log) {
        return prepare(model, verifyBetween, OpsetUpgrade.TARGET, log);
    }

    public static Model prepare(Model model, boolean verifyBetween, long targetOpset, Consumer<String> log) {
        // Duplicate node names (which ORT refuses) are repaired, not reported: the checker sees unique names.
        Model named = NameNodes.apply(model);
        ModelChecker.check(named);
        return preparePipeline(verifyBetween, targetOpset).run(named, log);
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
        Model prepared = prepare(floatModel, options.verifyBetweenPasses(), options.targetOpset(), say);
        LayerMatcher.Result plan = LayerMatcher.match(prepared, options.quant());
        for (String r : plan.rejected()) {
            say.accept("left in float: " + r);
        }
        if (plan.layers().isEmpty()) {
            if (!IfBranches.hasCandidates(prepared) && !LoopBodies.hasCandidates(prepared, options.quant())) {
                throw new QwtException("the model has no Conv, MatMul or Gemm layer with a constant weight to quantize");
            }
            // Only If branches or Loop/Scan bodies hold layers: nothing to calibrate or compensate at the top level.
            Compensator.Result none = new Compensator(options.cwac()).compensate(prepared, prepared, List.of(), Map.of(),
                    List.of(), calib, null, progress, null);
            return withBranches(prepared, prepared, plan, none, Duration.ZERO, Duration.ZERO, List.of(), calib, options,
                    progress, say);
        }
        long t0 = System.nanoTime();
        CalibOptions co = options.calib();
        Map<String, RangeMethod> methods = co.overrides().resolve(prepared.graph(), plan.tensorsToCalibrate(),
                co.method());
        if (!co.overrides().isEmpty()) {
            methods.forEach((t, m) -> say.accept("range of '" + t + "': " + m.label()));
        }
        // One float session for the whole run: calibration observes its activations, and compensation
        // compares with the layer outputs it keeps from the same pass.
        List<String> reference = compensationReference(prepared, plan, options.cwac());
        // Compensation's measuring models start after the float prefix, whose outputs calibration hands over.
        FloatPrefix prefix = FloatPrefix.plan(prepared, plan.layers(), options.cwac());
        Set<String> exposed = new LinkedHashSet<>(methods.keySet());
        exposed.addAll(reference);
        if (prefix != null) {
            exposed.addAll(prefix.boundary());
        }
        Map<String, Range> ranges;
        List<Sensitivity.LayerError> keptFloat = List.of();
        Model quantized;
        Compensator.Result comp;
        long t1;
        long t2;
        // What depends on the weights alone (their rounding, and the rounding residuals compensation measures with)
        // is computed on a thread of its own, from while ORT makes the float session (on one core) through calibration.
        try (AheadTasks ahead = new AheadTasks("qwt-onnx-weights")) {
            Map<String, Supplier<QuantizedWeight>> nearest = QdqQuantizer.roundAhead(prepared, plan.layers(),
                    options.quant(), ahead);
            WeightResiduals residuals = WeightResiduals.ahead(prepared, plan.layers(), nearest, options.cwac(), ahead);
            // ORT's native libraries are unpacked from its jar first: inflating them holds the JVM's GC locker again
            // and again, and near the heap's limit the thread ahead, allocating meanwhile, made the JVM print a warning
            // beside the one-line out-of-memory message.
            ai.onnxruntime.OrtEnvironment.getEnvironment();
            ahead.start();
            try (OrtRunner floatRunner = OrtRunner.forPasses(prepared, exposed);
                    FloatReference floats = FloatReference.on(floatRunner, reference)) {
                if (prefix != null) {
                    prefix.attach(floatRunner);
                }
                ranges = calibrate(floatRunner, prepared, methods, co, reference, floats, prefix,
                        options.cwac().samples(), calib, progress);
                Map<String, QuantizedWeight> rounded = options.quant().effectiveRounding() == WeightRounding.GPTQ
                        ? GptqRounder.round(prepared, plan.layers(), options.quant(), calib, progress)
                        : results(nearest);
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
                quantized = new Pipeline(List.of(new QdqQuantizer(options.quant(), plan.layers(), ranges, rounded),
                        new Int32MatMulBias(), new FullRankMatMulBias()), options.verifyBetweenPasses()).run(prepared, say);
                t1 = System.nanoTime();
                comp = new Compensator(options.cwac(), co.batch(), residuals, prefix).compensate(prepared, quantized, calib,
                        acceptance, progress, floats);
                t2 = System.nanoTime();
            }
        }
        return withBranches(prepared, quantized, plan, comp, Duration.ofNanos(t1 - t0), Duration.ofNanos(t2 - t1),
                keptFloat, calib, options, progress, say);
    }

    /**
     * Ranges of the calibrated tensors, from one pass of the float session that also hands over what
     * compensation keeps: the float activations of its {@code reference} (per batch, for the first
     * {@code samples}, batched among themselves) and the boundary of the float {@code prefix} (per sample).
     */
    private static Map<String, Range> calibrate(OrtRunner floatRunner, Model prepared, Map<String, RangeMethod> methods,
            CalibOptions co, List<String> reference, FloatReference floats, FloatPrefix prefix, int samples,
            CalibrationSource calib, Progress progress) {
        int flushAt = reference.isEmpty() || samples == 0 || samples >= calib.size() ? 0 : samples;
        java.util.function.Predicate<Batches.Batch> keepsReference = b -> !reference.isEmpty()
                && (flushAt == 0 || b.ordinals().get(0) < flushAt);
        return new RangeCalibrator(t -> co.observer(methods.get(t)), co.batch()).calibrate(floatRunner, prepared,
                methods.keySet(), flushAt, b -> {
                    List<String> extra = new ArrayList<>();
                    if (keepsReference.test(b)) {
                        extra.addAll(reference);
                    }
                    if (prefix != null && prefix.wants(b.ordinals().get(0))) {
                        extra.addAll(prefix.boundary());
                    }
                    return extra;
                }, calib, progress, (b, out) -> {
                    if (keepsReference.test(b)) {
                        floats.offer(b, out);
                    }
                    if (prefix != null) {
                        prefix.offer(b, out);
                    }
                });
    }

    /** The results of tasks run ahead, by key; those that gave null left out. */
    private static <T> Map<String, T> results(Map<String, Supplier<T>> tasks) {
        Map<String, T> out = new LinkedHashMap<>();
        tasks.forEach((k, task) -> {
            T v = task.get();
            if (v != null) {
                out.put(k, v);
            }
        });
        return out;
    }

    /** Quantizes the layers inside If branches and Loop/Scan bodies of the compensated model, then records provenance. */
    private static Result withBranches(Model prepared, Model quantized, LayerMatcher.Result plan, Compensator.Result comp,
            Duration calibrateTime, Duration compensateTime, List<Sensitivity.LayerError> keptFloat,
            CalibrationSource calib, Options options, Progress progress, Consumer<String> say) {
        IfBranches.Outcome branches = IfBranches.quantize(prepared, comp.model(), calib, options, progress, say);
        List<IfBranch> ifBranches = new ArrayList<>();
        for (IfBranches.Branch b : branches.branches()) {
            say.accept(b.toString());
            ifBranches.add(new IfBranch(b.ifNode(), b.branch(), b.samples(), b.layers(), b.result(), b.toString()));
        }
        LoopBodies.Outcome loops = LoopBodies.quantize(prepared, branches.model(), calib, options, progress, say);
        Model out = withProvenance(loops.model(), options);
        ModelChecker.check(out);
        return new Result(out, prepared, quantized, plan, comp, calibrateTime, compensateTime, keptFloat,
                List.copyOf(ifBranches), loops.bodies());
    }

    /**
     * The float layer outputs compensation compares with: those of the layers it measures against
     * the float model (the first of each stage; the others have local targets) that other layers
     * feed (the measuring run computes the others' itself), none when it measures against local
     * targets only.
     */
    private static List<String> compensationReference(Model prepared, LayerMatcher.Result plan, CwacOptions cwac) {
        Set<String> global = Compensator.referenceTargets(prepared.graph(), plan.layers(), LayerPlan::name,
                LayerPlan::input, cwac);
        List<String> outs = new ArrayList<>();
        for (LayerPlan l : plan.layers()) {
            if (global.contains(l.name())) {
                outs.add(l.output());
            }
        }
        return outs;
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
                mapped.skipped(), calib, acceptance, progress, null);
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
        put(b, "qwt.options", options.quant() + " " + options.cwac() + " " + options.calib() + " targetOpset="
                + options.targetOpset());
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
        return Version.version();
    }
}
