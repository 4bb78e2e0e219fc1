package dev.qwtonnx.run;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.quant.EmbeddingPrecision;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.QuantizedWeight;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.verify.Fidelity;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The quantize run: its options, its stages in order, and what it returns. Each stage is a pass
 * (model in, model out) or an analysis (facts out); the facts each consumes are produced by a stage
 * above it, which the runner checks before any work starts.
 */
public final class QuantizeRun {
    private QuantizeRun() {
    }

    /**
     * The stages of one quantize run. With a {@code destination}, the output is also lowered to
     * its format, saved, measured on the held-out samples and reported.
     */
    public static List<Stage> stages(Options options, Destination destination) {
        List<Stage> core = new ArrayList<>(List.of(
                new PrepareStage(options),          // check the input; constants, opset, folds, unique names
                new PlanLayersStage(options),       // which Conv/MatMul/Gemm layers get quantized, and why not others
                new StartAheadStage(options),       // weight rounding and residuals on a thread of their own
                new FloatSessionStage(options),     // the float session calibration runs on
                new Int8CostStage(options),         // ORT CPU: layers the cost model finds slower in int8 stay float
                new PlanCompensationStage(options), // float outputs compensation compares with; the float prefix
                new CalibrateStage(options, untimedFidelity(destination)), // activation ranges from one pass of the float session
                new RoundWeightsStage(options),     // nearest (from the thread ahead) or GPTQ
                new AccuracyTargetStage(options),   // --min-sqnr/--min-cosine/--metric: layers back to float, measured jointly
                new FloatBudgetStage(options),      // --float-budget: the most sensitive layers stay float
                new InsertQdqStage(options),        // Q/DQ around each planned layer, int32 biases
                new BiasFormsStage(options),        // a MatMul's bias Add as an int32 bias where ORT fuses it
                new ActivationMatMulsStage(options), // Q/DQ on both inputs of activation MatMuls where it pays
                new CompensateStage(options),       // CWAC: measure, fit, fold into scales and biases
                new IfBranchesStage(options),       // If branches: this same list on each branch
                new LoopBodiesStage(options),       // Loop/Scan bodies: calibrated and compensated over all iterations
                new EmbeddingsStage(options),       // Gather tables in int8, one scale per row
                new ProvenanceStage(options),       // tool, version and options in the model's metadata
                new CheckStage(MODEL)));            // the structural checker on the result
        if (destination != null) {
            core.add(new LowerStage());                    // --format qoperator: explicit integer operators
            if (destination.measureFidelity()) {           // for the summary, the report and --strict, before saving:
                core.add(new FidelityStage("fidelity", PREPARED, OUTPUT, FIDELITY, LATENCY, DESTINATION, // its runs timed
                        FLOAT_REUSE, FLOAT_RUNS, HELD_OUT_FLOAT));
                core.add(new LayerFidelityStage(options));                            // per layer, for the report and a warning
                core.add(new FidelityCheckStage(options));                           // target missed, poor fidelity: warn or stop
            }
            core.add(new SaveStage(OUTPUT, DESTINATION));  // atomic write, external data as asked
            if (destination.measureFidelity()) {
                core.add(new OrtGraphStage());             // the kernels ORT runs
            }
            if (!destination.reports().isEmpty()) {        // the HTML/JSON report
                core.add(new ReportStage(options));
            }
        }
        return List.copyOf(core);
    }

    /**
     * Whether the run measures its held-out fidelity untimed (no report reads a latency): the float model's outputs
     * on the held-out samples then come from calibration's float session ({@link CalibrateStage}), not a session of
     * their own.
     */
    static boolean untimedFidelity(Destination destination) {
        return destination != null && destination.measureFidelity() && destination.reports().isEmpty();
    }

    /** Quantizes {@code floatModel} with the stages above (no destination): the API's and an If branch's run. */
    public static Result quantize(Model floatModel, Options options, RunContext ctx) {
        return run(floatModel, options, null, ctx);
    }

    /** Runs every stage, destination stages included when {@code destination} is not null. */
    public static Result run(Model floatModel, Options options, Destination destination, RunContext ctx) {
        if (ctx.calibration().size() == 0) {
            throw new QwtException("the calibration set is empty");
        }
        List<Stage> stages = stages(options, destination);
        // Where the run may be made again, the float model's held-out outputs are kept for it: the same model on the
        // same samples.
        int cut = destination != null && clipsWherePoor(options, floatModel.serializedSize()) ? fidelityCut(stages) : -1;
        Facts facts = given(floatModel, destination, cut < 0 ? FidelityStage.FloatReuse.NONE
                : new FidelityStage.FloatReuse(null, KEPT_FLOAT_RUNS_BYTES));
        if (destination != null) {
            if (!destination.reports().isEmpty()) {
                // The report stage's class loading and template parsing, on a spare core while the stages run. Whatever
                // fails here (the class's own initialization too, as when the heap runs out) fails again, with its
                // one line, where the report is written: nothing of it reaches the terminal from this thread.
                Thread warm = new Thread(() -> {
                    try {
                        dev.qwtonnx.verify.ReportWriter.warmUp();
                    } catch (Throwable t) {
                        // See above.
                    }
                }, "qwt-onnx-report-warm-up");
                warm.setDaemon(true);
                warm.start();
            }
        }
        List<StageRunner.Timing> timings = new ArrayList<>();
        String ranges = null;
        if (cut < 0) {
            timings.addAll(StageRunner.run("quantize", stages, ctx, facts));
        } else {
            // Min/max ranges leave some models poor (an outlier widens a range, every other value loses its steps),
            // and clipping is what fixes them, but clipping costs models that read well (decision 0001): so the run
            // up to the held-out fidelity is made again with percentile ranges where that fidelity is poor, and the
            // rest of the run (per-layer pass, warning, save, report) goes on with the better of the two.
            timings.addAll(StageRunner.run("quantize", stages.subList(0, cut), ctx, facts));
            if (!FidelityCheckStage.poor(facts.get(FIDELITY)).isEmpty()) {
                Retry retry = withPercentileRanges(floatModel, options, destination, facts, ctx, timings);
                ranges = retry.line();
                if (retry.facts() != null) {
                    facts = retry.facts();
                    stages = retry.stages();
                    cut = fidelityCut(stages);
                }
            }
            facts.remove(FLOAT_RUNS); // read by the second run only
            timings.addAll(StageRunner.run("quantize", stages.subList(cut, stages.size()), ctx, facts));
        }
        return new Result(facts.get(MODEL), facts.get(PREPARED), facts.get(QUANTIZED), facts.get(PLAN),
                facts.get(COMPENSATION), between(timings, CalibrateStage.NAME, BiasFormsStage.NAME),
                between(timings, CompensateStage.NAME, CompensateStage.NAME), facts.get(KEPT_FLOAT),
                facts.get(IF_BRANCHES), facts.get(LOOP_BODIES), List.copyOf(timings),
                facts.has(FIDELITY) ? facts.get(FIDELITY) : List.of(),
                facts.has(OUTPUT) ? facts.get(OUTPUT) : facts.get(MODEL),
                facts.has(OPTIMIZED) ? facts.get(OPTIMIZED) : null, facts.get(ACCURACY),
                facts.has(WARNINGS) ? facts.get(WARNINGS) : List.of(), ranges);
    }

    /**
     * The facts a run starts from: the float model and, with a destination, the destination and what the fidelity
     * pass reuses and keeps of the float model's runs.
     */
    static Facts given(Model floatModel, Destination destination, FidelityStage.FloatReuse reuse) {
        Facts facts = new Facts().put(INPUT, floatModel);
        if (destination != null) {
            facts.put(DESTINATION, destination).put(FLOAT_REUSE, reuse);
        }
        return facts;
    }

    /**
     * Whether a run of these options on a model of {@code modelBytes} is made again with percentile ranges where
     * its held-out fidelity is poor: min/max ranges under {@code --calibrate auto}, no accuracy target (its search
     * returns layers to float instead), and a model under 1 GB (the first run's models would be held beside the
     * second's).
     */
    public static boolean clipsWherePoor(Options options, long modelBytes) {
        return options.calib().retriesWherePoor() && !options.accuracy().hasTarget()
                && modelBytes < dev.qwtonnx.ort.OrtSessions.IN_MEMORY_FROM;
    }

    /**
     * Most bytes of the float model's outputs on the held-out samples kept for a run made again with percentile
     * ranges (a detector's maps at 960 px: 48 MB); beyond it the second run runs the float model again.
     */
    static final long KEPT_FLOAT_RUNS_BYTES = 256L << 20;

    /** Least SQNR gain (dB, worst output) for which the percentile run is kept over the min/max one. */
    static final double RETRY_GAIN_DB = 0.5;

    /**
     * The run with percentile ranges made after a poor one with min/max ranges: its facts and stages where it is
     * kept (null facts: the min/max run goes on), and the summary's line saying which and why.
     */
    private record Retry(Facts facts, List<Stage> stages, String line) {
    }

    /**
     * Makes the run up to the held-out fidelity again with percentile ranges, beside {@code minMax}'s facts; a
     * failure of it (ORT refusing its reductions, say) keeps the min/max run, which is whole already (the runner
     * closes what the failed run opened).
     */
    private static Retry withPercentileRanges(Model floatModel, Options options, Destination destination, Facts minMax,
            RunContext ctx, List<StageRunner.Timing> timings) {
        Options clipped = options.withCalib(options.calib().withMethod(dev.qwtonnx.calib.RangeMethod.PERCENTILE));
        List<Stage> again = stages(clipped, destination);
        // What does not depend on the ranges is the first run's: the prepared model, its matched layers and those
        // the cost model keeps, the shapes of the float session's outputs on the first sample (the same tensors; of
        // the reductions, a few values each, the first run's), its outputs on the held-out samples. With the shapes
        // known, int8-cost does not run again, and calibration makes the one float session it keeps instead of a
        // second (FloatSessionStage.FloatSession).
        Facts second = given(floatModel, destination, new FidelityStage.FloatReuse(minMax.get(FLOAT_RUNS).orElse(null), 0))
                .put(PREPARED, minMax.get(PREPARED)).put(MATCHED, minMax.get(MATCHED))
                .put(AFFORDABLE, minMax.get(AFFORDABLE)).put(EXPOSED_SHAPES, minMax.get(EXPOSED_SHAPES));
        again = again.stream().filter(st -> st.produces().stream().noneMatch(second::has)).toList();
        double was = worstSqnr(minMax.get(FIDELITY));
        String percentile;
        boolean better = false;
        try {
            timings.addAll(StageRunner.run("quantize with percentile ranges", again.subList(0, fidelityCut(again)), ctx,
                    second));
            double now = worstSqnr(second.get(FIDELITY));
            better = now > was + RETRY_GAIN_DB;
            percentile = String.format(java.util.Locale.ROOT, "%.2f dB with percentile %s", now, clipped.calib().percentile());
        } catch (QwtException e) {
            percentile = "percentile ranges failed: " + e.getMessage();
        }
        String line = String.format(java.util.Locale.ROOT, "activation ranges: %s (held-out SQNR %.2f dB with min/max, %s)",
                better ? "percentile" : "min/max", was, percentile);
        return better ? new Retry(second, again, line) : new Retry(null, null, line);
    }

    /** The index just after the stage that measures the held-out fidelity, or -1 where no stage measures it. */
    private static int fidelityCut(List<Stage> stages) {
        for (int i = 0; i < stages.size(); i++) {
            if (stages.get(i).produces().contains(FIDELITY)) {
                return i + 1;
            }
        }
        return -1;
    }

    private static double worstSqnr(List<Fidelity.OutputFidelity> outputs) {
        return outputs.stream().mapToDouble(Fidelity.OutputFidelity::meanSqnrDb).min().orElse(Double.NaN);
    }

    /** The prepared float model the stages quantize (checked, prepare passes run), at the default opset. */
    public static Model prepare(Model model, boolean verifyBetween, java.util.function.Consumer<String> log) {
        return PrepareStage.prepare(model, verifyBetween, OpsetUpgrade.TARGET, log);
    }

    /** The QOperator form of a QDQ model, as {@code --format qoperator} writes it. */
    public static Model toQOperator(Model qdq, boolean verifyBetweenPasses, java.util.function.Consumer<String> log) {
        return LowerStage.toQOperator(qdq, verifyBetweenPasses, log);
    }

    private static Duration between(List<StageRunner.Timing> timings, String first, String last) {
        Duration d = Duration.ZERO;
        boolean in = false;
        for (StageRunner.Timing t : timings) {
            in |= t.stage().equals(first);
            if (in) {
                d = d.plus(t.wall());
            }
            if (t.stage().equals(last)) {
                break;
            }
        }
        return d;
    }

    // The facts of a quantize run, in the order the stages produce them.
    static final Fact<Model> INPUT = Fact.named("input model");
    static final Fact<Destination> DESTINATION = Fact.named("destination");
    static final Fact<Model> PREPARED = Fact.named("prepared model");
    static final Fact<LayerMatcher.Result> MATCHED = Fact.named("matched layers");
    static final Fact<PlanCompensationStage.Plan> COMPENSATION_PLAN = Fact.named("compensation plan");
    static final Fact<StartAheadStage.WorkAhead> AHEAD = Fact.named("work ahead");
    static final Fact<Map<String, Range>> RANGES = Fact.named("activation ranges");
    static final Fact<FloatSessionStage.FloatSession> FLOAT_SESSION = Fact.named("float session");
    static final Fact<CalibrateStage.FloatPass> FLOAT_PASS = Fact.named("float pass");
    static final Fact<Map<String, QuantizedWeight>> ROUNDED = Fact.named("rounded weights");
    static final Fact<LayerMatcher.Result> AFFORDABLE = Fact.named("layers faster in int8");
    static final Fact<Map<String, long[]>> EXPOSED_SHAPES = Fact.named("shapes of the float session's outputs");
    static final Fact<AccuracySearch> ACCURACY = Fact.named("accuracy target's search");
    static final Fact<LayerMatcher.Result> PLAN = Fact.named("layer plan");
    static final Fact<List<Sensitivity.LayerError>> KEPT_FLOAT = Fact.named("kept in float");
    static final Fact<Model> QDQ = Fact.named("Q/DQ model");
    static final Fact<Model> BIASED = Fact.named("Q/DQ model with bias forms");
    static final Fact<Model> QUANTIZED = Fact.named("quantized model");
    static final Fact<Compensator.Result> COMPENSATION = Fact.named("compensation");
    static final Fact<Model> WITH_BRANCHES = Fact.named("model with If branches");
    static final Fact<List<IfBranch>> IF_BRANCHES = Fact.named("If branches");
    static final Fact<Model> WITH_LOOPS = Fact.named("model with Loop/Scan bodies");
    static final Fact<Model> WITH_TABLES = Fact.named("model with int8 tables");
    static final Fact<List<LoopBody>> LOOP_BODIES = Fact.named("Loop/Scan bodies");
    static final Fact<Model> MODEL = Fact.named("QDQ model");
    static final Fact<Model> OUTPUT = Fact.named("output model");
    static final Fact<List<Fidelity.OutputFidelity>> FIDELITY = Fact.named("held-out fidelity");
    static final Fact<java.util.Optional<dev.qwtonnx.verify.LatencyMeter.Result>> LATENCY = Fact.named("held-out latency");
    static final Fact<FidelityStage.FloatReuse> FLOAT_REUSE = Fact.named("float runs on the held-out samples to reuse");
    static final Fact<java.util.Optional<Fidelity.FloatRuns>> FLOAT_RUNS = Fact.named("float runs on the held-out samples");
    static final Fact<java.util.Optional<Fidelity.FloatRuns>> HELD_OUT_FLOAT =
            Fact.named("float runs on the held-out samples in calibration's session");
    static final Fact<LayerFidelityStage.Measured> LAYER_FIDELITY = Fact.named("per-layer fidelity");
    static final Fact<List<String>> WARNINGS = Fact.named("fidelity warnings");
    static final Fact<Model> OPTIMIZED = Fact.named("ORT's optimized output");

    /**
     * Every option of a quantization run, validated where each part is built. {@code targetOpset}
     * is the opset the model is upgraded to before quantizing (13 up to {@link OpsetUpgrade#MAX_TARGET};
     * a model already above it keeps its own). {@code accuracy} is the accuracy target and --strict.
     */
    public record Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses, CalibOptions calib,
            long targetOpset, AccuracyOptions accuracy, EmbeddingPrecision embeddings) {
        public Options {
            Objects.requireNonNull(quant, "quant");
            Objects.requireNonNull(cwac, "cwac");
            Objects.requireNonNull(calib, "calib");
            Objects.requireNonNull(accuracy, "accuracy");
            Objects.requireNonNull(embeddings, "embeddings");
            OpsetUpgrade.checkTarget(targetOpset);
        }

        /**
         * The compensation options with the stage count made a number for these weights' bit width
         * ({@link CwacOptions#AUTO_STAGES}); the field keeps "auto", so that changing the bit width later
         * ({@link #withQuant}) changes the count too.
         */
        @Override
        public CwacOptions cwac() {
            return cwac.resolvedFor(quant.weightBits());
        }

        /** Without an accuracy target, Gather tables in int8. */
        public Options(QuantOptions quant, CwacOptions cwac, boolean verifyBetweenPasses, CalibOptions calib,
                long targetOpset) {
            this(quant, cwac, verifyBetweenPasses, calib, targetOpset, AccuracyOptions.NONE, EmbeddingPrecision.INT8);
        }

        public static Options defaults() {
            return new Options(QuantOptions.defaults(), CwacOptions.defaults(), false, CalibOptions.defaults(),
                    OpsetUpgrade.TARGET);
        }

        public Options withAccuracy(AccuracyOptions a) {
            return new Options(quant, cwac, verifyBetweenPasses, calib, targetOpset, a, embeddings);
        }

        public Options withCwac(CwacOptions c) {
            return new Options(quant, c, verifyBetweenPasses, calib, targetOpset, accuracy, embeddings);
        }

        public Options withQuant(QuantOptions q) {
            return new Options(q, cwac, verifyBetweenPasses, calib, targetOpset, accuracy, embeddings);
        }

        public Options withCalib(CalibOptions c) {
            return new Options(quant, cwac, verifyBetweenPasses, c, targetOpset, accuracy, embeddings);
        }

        public Options withTargetOpset(long opset) {
            return new Options(quant, cwac, verifyBetweenPasses, calib, opset, accuracy, embeddings);
        }

        /** With the structural checker run after every pass that changed the model (tests turn this on). */
        public Options withVerifyBetweenPasses(boolean on) {
            return new Options(quant, cwac, on, calib, targetOpset, accuracy, embeddings);
        }

        /** The opset the model is upgraded to: the one asked for, or later where the target's Q/DQ need it (16-bit: 21). */
        public long opset() {
            return Math.max(targetOpset, quant.target().minOpset());
        }

        /** With Gather tables stored as {@code e}. */
        public Options withEmbeddings(EmbeddingPrecision e) {
            return new Options(quant, cwac, verifyBetweenPasses, calib, targetOpset, accuracy, e);
        }
    }

    /**
     * The run's products: the output model (QDQ, provenance recorded), the prepared float model it is
     * compared with, the quantized model before compensation, the plan, the compensation's fits, each
     * stage's time, and, with a destination, the model as written, its held-out fidelity and ORT's
     * optimized graph of it (empty and null when not measured). {@code calibrateTime} covers the
     * stages from calibrate through bias-forms (ranges, rounding, Q/DQ), {@code compensateTime} the
     * compensate stage. {@code accuracy} is what the accuracy target's search did ({@link
     * AccuracySearch#NONE}-like without a target); {@code warnings} the lines beginning "warning:" about
     * the written model's fidelity (empty when not measured); {@code ranges} which ranges a poor run with
     * min/max ranges kept once made again with percentile ones, and why (null where it was not made again).
     */
    public record Result(Model model, Model prepared, Model uncompensated, LayerMatcher.Result plan,
            Compensator.Result compensation, Duration calibrateTime, Duration compensateTime,
            List<Sensitivity.LayerError> keptFloat, List<IfBranch> ifBranches, List<LoopBody> loopBodies,
            List<StageRunner.Timing> timings, List<Fidelity.OutputFidelity> fidelity, Model written, Model optimized,
            AccuracySearch accuracy, List<String> warnings, String ranges) {
        /** Layers quantized inside If branches (the plan lists the top-level ones). */
        public int branchLayers() {
            return ifBranches.stream().mapToInt(b -> b.result() == null ? 0 : b.result().plan().layers().size()
                    + b.result().branchLayers() + b.result().loopLayers()).sum();
        }

        /** Layers whose compensation changed them, at the top level and inside If branches. */
        public int compensatedLayers() {
            return compensation.changed() + ifBranches.stream().mapToInt(b -> b.result() == null ? 0 : b.result().compensatedLayers()).sum();
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
}
