package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * Channel-wise affine compensation as an analysis plus a fold: measures each quantized layer's
 * output against its target over the calibration data, fits yf ≈ a·yq + b per channel, and folds
 * the fit with {@link CwacFold}. The float model pairs with the quantized one through the
 * provenance entry our quantizer writes on each layer node ({@link Nodes#FROM}), or through a
 * mapping given by the caller ({@link ForeignLayers}, by weights, for a model quantized by another
 * tool).
 */
public final class Compensator {
    private final CwacOptions options;
    private final int maxBatch;
    private final WeightResiduals residuals;
    private final FloatPrefix prefix;
    /** Whether the measuring sessions run one sample at a time ({@link dev.qwtonnx.calib.Batches#runsAlone}). */
    private final boolean alone;

    /** Measuring one sample per run. */
    public Compensator(CwacOptions options) {
        this(options, 1);
    }

    /**
     * Measuring up to {@code maxBatch} samples of equal shapes per run where the model's first
     * dimensions are dynamic (the calibration's batching: the same batches, so activations kept
     * from calibration are found again).
     */
    public Compensator(CwacOptions options, int maxBatch) {
        this(options, maxBatch, WeightResiduals.NONE, null);
    }

    /**
     * As {@link #Compensator(CwacOptions, int)}, with the weights' rounding residuals computed ahead
     * where they were, and measuring sessions that start after the model's float prefix where
     * {@code prefix} (nullable, its boundary handed over by calibration) is the quantized model's.
     */
    public Compensator(CwacOptions options, int maxBatch, WeightResiduals residuals, FloatPrefix prefix) {
        this(options, maxBatch, residuals, prefix, false);
    }

    /**
     * As {@link #Compensator(CwacOptions, int, WeightResiduals, FloatPrefix)}, the measuring passes running one
     * sample at a time where {@code alone} (samples too large to share a run: {@code Batches.runsAlone}).
     */
    public Compensator(CwacOptions options, int maxBatch, WeightResiduals residuals, FloatPrefix prefix,
            boolean alone) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, got " + maxBatch);
        }
        this.options = options;
        this.maxBatch = maxBatch;
        this.residuals = residuals;
        this.prefix = prefix;
        this.alone = alone;
    }

    /** JVM property: true gives each accepting stage sessions of its own, as without a shared one (for comparing). */
    static final String SESSION_PER_STAGE = "qwt.cwac.sessionPerStage";

    /** JVM property: true measures each stage in a pass of its own, as before passes measured stages ahead (for comparing). */
    static final String STAGE_BY_STAGE = "qwt.cwac.stageByStage";

    /** Samples the output-level acceptance runs on at most: enough to rank a few candidates, cheap per stage. */
    public static final int MAX_ACCEPTANCE_SAMPLES = 32;

    /** What a stage kept under output-level acceptance. */
    public enum Choice {
        /** The fit the method asked for. */
        FIT,
        /** Only the fit's shift (a = 1): the gain made the output worse. */
        SHIFT,
        /** Nothing: every candidate made the output worse. */
        NONE
    }

    /**
     * One stage's decisions under output-level acceptance, with the model-output error (relative
     * squared, see {@link OutputError}) at each step: before the stage; after the factor kept for
     * the y_scale of the requantizations before the layers' bias Adds (1: unchanged); with each fold
     * candidate tried (NaN: ruled out on the even half of the samples, which then does not measure it whole);
     * and after the stage.
     */
    public record StageChoice(int stage, List<String> layers, double errorBefore, double outputScale,
            double errorRescaled, Choice choice, Map<Choice, Double> errors, double errorAfter) {
    }

    /**
     * Factors tried on the scales of the stage's output requantizations (y_scale), before the fit:
     * ORT's min-max range can be far wider than what matters for the output (a transformer's FFN
     * outputs: a few outliers set the uint8 step for all), and a fold's gains move the range.
     */
    static final double[] OUTPUT_SCALE_FACTORS = {1.25, 0.7, 0.5, 0.35, 0.25};

    /**
     * Where a run's time went, for {@code --verbose}: the measuring passes (each runs the model on the fitting samples
     * and sums what the fits need), and under output acceptance the candidates judged on the acceptance samples
     * (requantization factors; shifts and fits, those that passed the even half run on every sample).
     */
    public static final class Spent {
        private long passNanos;
        private int passes;
        private long factorNanos;
        private int factors;
        private long candidateNanos;
        private int candidates;
        private int candidatesWhole;

        void pass(long nanos) {
            passNanos += nanos;
            passes++;
        }

        void factor(long nanos) {
            factorNanos += nanos;
            factors++;
        }

        void candidate(long nanos, boolean whole) {
            candidateNanos += nanos;
            candidates++;
            candidatesWhole += whole ? 1 : 0;
        }

        public int passes() {
            return passes;
        }

        public int candidates() {
            return candidates + factors;
        }

        @Override
        public String toString() {
            String measuring = String.format(java.util.Locale.ROOT, "measuring %.2f s (%d %s)", passNanos / 1e9, passes,
                    passes == 1 ? "pass" : "passes");
            return factors + candidates == 0 ? measuring : measuring + String.format(java.util.Locale.ROOT,
                    ", requantization factors %.2f s (%d candidates), shifts and fits %.2f s (%d candidates, %d on every"
                            + " acceptance sample)", factorNanos / 1e9, factors, candidateNanos / 1e9, candidates,
                    candidatesWhole);
        }
    }

    /**
     * The compensated model, the folded fits by layer name (identity where acceptance undid a stage),
     * the layers that were left alone, the acceptance's decisions per stage (empty without it), how
     * many samples it judged them on (0 without it), and whether the model was measured on its
     * quantization grid instead of this CPU's kernels ({@link Grid}; false where nothing was measured).
     */
    public record Result(Model model, List<QdqLayer> layers, Map<String, FloatLayer> floatLayers,
            Map<String, ChannelFit> fits, List<String> skipped, List<StageChoice> choices, int acceptanceSamples,
            boolean onGrid, Spent spent) {
        public double sseBefore() {
            return fits.values().stream().mapToDouble(ChannelFit::sseBefore).sum();
        }

        /** Layers whose fit changed them (not the identity). */
        public int changed() {
            return (int) fits.values().stream().filter(f -> !f.isIdentity()).count();
        }

        public double sseAfter() {
            return fits.values().stream().mapToDouble(ChannelFit::sseAfter).sum();
        }
    }

    public Result compensate(Model floatModel, Model quantModel, CalibrationSource data, Progress progress) {
        return compensate(floatModel, quantModel, data, null, progress, null);
    }

    /**
     * Compensates our own QDQ output, its layers paired with the float model's by their provenance;
     * {@code acceptance} holds the samples output-level acceptance measures on (null: the
     * calibration samples); float activations come from {@code reference} where it has them (null:
     * a reference of its own).
     */
    public Result compensate(Model floatModel, Model quantModel, CalibrationSource data, CalibrationSource acceptance,
            Progress progress, FloatReference reference) {
        QdqLayers.Result found = QdqLayers.find(quantModel);
        List<String> skipped = new ArrayList<>(found.skipped());
        Map<String, FloatLayer> floats = new HashMap<>();
        List<QdqLayer> layers = new ArrayList<>();
        GraphEditor fg = new GraphEditor(floatModel.graph());
        Map<String, NodeProto> floatNodes = new HashMap<>();
        for (NodeProto n : fg.nodes()) {
            floatNodes.putIfAbsent(n.getName(), n);
        }
        for (QdqLayer l : found.layers()) {
            FloatLayer f = floatCounterpart(fg, floatNodes, l);
            if (f == null) {
                skipped.add(l.kind().opType + " node '" + l.name() + "': " + (l.from() == null
                        ? "it carries no '" + Nodes.FROM + "' entry naming the float node it was quantized from"
                        : "the float node '" + l.from() + "' it was quantized from is not a " + l.kind().opType
                                + (l.biasAdd() != null ? " followed by its bias Add alone" : "")));
                continue;
            }
            floats.put(l.name(), f);
            layers.add(l);
        }
        return compensate(floatModel, quantModel, layers, floats, skipped, data, acceptance, progress, reference);
    }

    /**
     * Compensates the given layers of {@code quantModel}, each measured against its float
     * counterpart in {@code floats} (keyed by layer name); {@code skipped} is passed through to the
     * result, with the layers whose fits {@link CwacFold} rejected (their fits then the identity). With {@link CwacOptions.Accept#OUTPUT}, each stage keeps a candidate (the fit, its
     * shift alone, or nothing; tried simplest first) only where it lowers the model-output error on
     * {@code acceptance} beyond the noise between those samples ({@link StageAcceptance#gains}), at most
     * {@value #MAX_ACCEPTANCE_SAMPLES} of them; without acceptance samples, a share of {@code data}
     * is held out for it and the fits use the rest (with fewer than {@value StageAcceptance#MIN_SPLIT} samples,
     * the stages are judged on the fitting samples). Float activations come
     * from {@code reference} where it has them (null: a reference of its own).
     */
    public Result compensate(Model floatModel, Model quantModel, List<QdqLayer> layers, Map<String, FloatLayer> floats,
            List<String> skipped, CalibrationSource data, CalibrationSource acceptance, Progress progress,
            FloatReference reference) {
        Map<String, ChannelFit> fits = new LinkedHashMap<>();
        List<StageChoice> choices = new ArrayList<>();
        List<String> left = new ArrayList<>(skipped);
        if (options.method() == CwacOptions.Method.NONE || layers.isEmpty()) {
            return new Result(quantModel, List.copyOf(layers), Map.copyOf(floats), fits, List.copyOf(skipped), choices, 0,
                    false, new Spent());
        }
        List<List<QdqLayer>> stages = options.schedule() == CwacOptions.Schedule.PARALLEL ? List.of(layers)
                : StageSchedule.grouped(StageSchedule.stages(quantModel, layers), options.stageCount());
        // Float activations only for the layers measured against them whose target the measuring run cannot compute
        // (see referenceTargets); the rest have local targets.
        Set<String> global = StageSchedule.globalTargets(quantModel.graph(), layers, QdqLayer::name, QdqLayer::input,
                options);
        GraphEditor qg = new GraphEditor(quantModel.graph());
        List<String> floatOuts = new ArrayList<>();
        for (QdqLayer l : layers) {
            if (global.contains(l.name()) && UnquantizedInputs.of(qg, l) == null) {
                floatOuts.add(floats.get(l.name()).output());
            }
        }
        // Every measuring and judging session of the run in one arithmetic (see Grid).
        boolean onGrid = Grid.measures(quantModel);
        OutputError judge = null;
        if (options.accept() == CwacOptions.Accept.OUTPUT) {
            // The stages are judged on samples the fits never saw: given ones, else a share of the calibration set.
            if (acceptance == null || acceptance.size() == 0) {
                if (data.size() >= StageAcceptance.MIN_SPLIT) {
                    List<CalibrationSource> parts =
                            CalibrationSources.split(data, StageAcceptance.OWN_ACCEPTANCE_SHARE, 1);
                    data = parts.get(0);
                    acceptance = parts.get(1);
                } else {
                    acceptance = data;
                }
            }
            judge = new OutputError(floatModel, first(acceptance, MAX_ACCEPTANCE_SAMPLES), onGrid);
        }
        // The float activations do not change between stages: one reference, each batch computed once.
        FloatReference own = floatOuts.isEmpty() || reference != null && reference.serves(floatOuts) ? null
                : FloatReference.of(floatModel, floatOuts, options.keepBytes(floatModel));
        FloatReference ref = own != null ? own : reference;
        Model current = quantModel;
        // Measured at the start of each stage on the session that judges it (see variants below); on the shared one,
        // carried over from the stage before.
        OutputError.Errors currentErrors = null;
        double currentError = Double.NaN;
        SharedSession shared = null;
        boolean onSharedBefore = false;
        MeasuredAhead ahead = null;
        MeasuringPasses passes = new MeasuringPasses(floatModel, ref, floats, data, progress, onGrid);
        Spent spent = new Spent();
        long[] bytes = null;
        try {
            // Acceptance's stages differ from the input model only in their parameters' values: one session, those
            // values fed, judges and measures every stage where ORT takes them so.
            shared = judge == null || stages.size() < 2 || Boolean.getBoolean(SESSION_PER_STAGE) ? null
                    : shared(judge, quantModel, floatModel, stages, floats);
            int s = 0;
            for (List<QdqLayer> stage : stages) {
                s++;
                // First the requantization between the stage's layers and their bias Adds: a refitted y_scale is kept
                // only if the output gains; the fits are then measured through it (a shift fitted at one step size
                // is wrong at another).
                double factor = 1;
                List<String> scales = judge == null ? List.of() : OutputScales.of(current, stage);
                // Every candidate of this stage differs from the current model only in the stage's scales and
                // biases: one session measures them all, the current model included (same arithmetic).
                boolean onShared = shared != null && shared.variants().takes(current);
                try (OutputError.Variants ofStage = judge == null || onShared ? null
                        : judge.variants(current, parameters(stage, scales))) {
                    OutputError.Variants variants = onShared ? shared.variants() : ofStage;
                    // On the shared session the errors kept from the stage before are in this session's arithmetic.
                    if (variants != null && !(onShared && onSharedBefore)) {
                        currentErrors = variants.perSample(current);
                        currentError = currentErrors.total();
                    }
                    onSharedBefore = onShared;
                    OutputError.Errors rescaledErrors = currentErrors;
                    Model rescaled = current;
                    for (double k : scales.isEmpty() ? new double[0] : OUTPUT_SCALE_FACTORS) {
                        Map<String, Double> factors = new LinkedHashMap<>();
                        scales.forEach(n -> factors.put(n, k));
                        Model scaled = OutputScales.scaled(current, factors);
                        long t0 = System.nanoTime();
                        OutputError.Errors e = variants.perSampleBeating(scaled, rescaledErrors);
                        spent.factor(System.nanoTime() - t0);
                        if (e != null && StageAcceptance.keeps(rescaledErrors, e)) {
                            factor = k;
                            rescaledErrors = e;
                            rescaled = scaled;
                        }
                    }
                    double rescaledError = judge == null ? Double.NaN : rescaledErrors.total();
                    current = rescaled;
                    Map<String, ChannelStats[]> stats;
                    if (ahead != null && ahead.model() == current && ahead.stats().containsKey(stage.get(0).name())) {
                        stats = ahead.of(stage);
                    } else {
                        // On the shared session a pass measures this stage and every later one at once: their sums
                        // hold for as long as no stage changes the model, which on most models few or none do.
                        // Only where the fits take every sample: a stage that needs more rows asks for them alone.
                        int last = s;
                        long budget = onShared ? aheadBudget(floatModel, shared) : 0;
                        // Without a budget (--memory 0) not even the run that sizes the stages is made.
                        if (budget > 0 && fitsEverySample(data) && s < stages.size()
                                && !Boolean.getBoolean(STAGE_BY_STAGE)) {
                            if (bytes == null) {
                                bytes = bytesPerSample(shared, current, stages, data);
                            }
                            last = ahead(bytes, s - 1, budget) + 1;
                        }
                        List<QdqLayer> measured = stages.subList(s - 1, last).stream().flatMap(List::stream).toList();
                        String task = stages.size() == 1 ? "compensate"
                                : last > s ? "compensate stages " + s + "-" + last + "/" + stages.size()
                                : "compensate stage " + s + "/" + stages.size();
                        long t0 = System.nanoTime();
                        Map<String, ChannelStats[]> all = measure(current, measured, task, onShared ? shared : null,
                                passes);
                        spent.pass(System.nanoTime() - t0);
                        ahead = new MeasuredAhead(current, all);
                        stats = ahead.of(stage);
                    }
                    Map<String, ChannelFit> stageFits = fit(stage, stats, options.method());
                    if (judge == null) {
                        Folded folded = fold(current, stage, stageFits, left);
                        fits.putAll(folded.fits());
                        current = folded.model();
                        continue;
                    }
                    // Candidates simplest first; one replaces the simpler choice kept so far only if it lowers the output
                    // error by more than the noise between samples (see gains).
                    Map<Choice, Map<String, ChannelFit>> candidates = new LinkedHashMap<>();
                    if (options.method() == CwacOptions.Method.CWAC && stage.stream().anyMatch(QdqLayer::hasBias)) {
                        candidates.put(Choice.SHIFT, fit(stage, stats, CwacOptions.Method.BIAS));
                    }
                    candidates.put(Choice.FIT, stageFits);
                    Choice best = Choice.NONE;
                    OutputError.Errors bestErrors = rescaledErrors;
                    Model bestModel = current;
                    Map<Choice, Double> errors = new LinkedHashMap<>();
                    List<CwacFold.NotFolded> rejected = List.of();
                    for (Map.Entry<Choice, Map<String, ChannelFit>> c : candidates.entrySet()) {
                        CwacFold.Outcome outcome = new CwacFold(stage, c.getValue()).apply(current);
                        Model folded = outcome.model();
                        if (c.getKey() == Choice.FIT) {
                            rejected = outcome.rejected();
                        }
                        long t0 = System.nanoTime();
                        OutputError.Errors e = variants.perSampleBeating(folded, bestErrors);
                        spent.candidate(System.nanoTime() - t0, e != null);
                        errors.put(c.getKey(), e == null ? Double.NaN : e.total());
                        if (e != null && StageAcceptance.keeps(bestErrors, e)) {
                            best = c.getKey();
                            bestErrors = e;
                            bestModel = folded;
                        }
                    }
                    choices.add(new StageChoice(s, stage.stream().map(QdqLayer::name).toList(), currentError, factor,
                            rescaledError, best, Map.copyOf(errors), bestErrors.total()));
                    fits.putAll(best == Choice.NONE ? identity(stage, stageFits)
                            : withRejected(candidates.get(best), rejected, left));
                    current = bestModel;
                    currentErrors = bestErrors;
                    currentError = bestErrors.total();
                }
            }
        } finally {
            if (shared != null) {
                shared.variants().close();
            }
            if (own != null) {
                own.close();
            }
        }
        return new Result(current, List.copyOf(layers), Map.copyOf(floats), fits, List.copyOf(left),
                List.copyOf(choices), judge == null ? 0 : judge.size(), onGrid, spent);
    }

    /** Sums measured on {@code model} for the layers of one stage and of the stages after it. */
    private record MeasuredAhead(Model model, Map<String, ChannelStats[]> stats) {
        Map<String, ChannelStats[]> of(List<QdqLayer> stage) {
            Map<String, ChannelStats[]> out = new LinkedHashMap<>();
            stage.forEach(l -> out.put(l.name(), stats.get(l.name())));
            return out;
        }
    }

    /**
     * The last stage (index) a pass that measures stage {@code from} measures too: the stages after it, in order,
     * while their fetched tensors stay within {@code budget} bytes per sample ({@code bytes}: per stage); the stage
     * itself always.
     */
    static int ahead(long[] bytes, int from, long budget) {
        int last = from;
        long used = bytes[from];
        while (last + 1 < bytes.length && used + bytes[last + 1] <= budget) {
            last++;
            used += bytes[last];
        }
        return last;
    }

    /**
     * Bytes per sample a pass that measures stages at once may fetch: an eighth of the budget for kept
     * activations, shared by the samples in flight. The copies out of ORT are short-lived but come fast, and the
     * heap commits several times what is live when they do: a larger share saves few passes for much more memory,
     * a smaller one many passes for little (decision 0017 has the figures).
     */
    private long aheadBudget(Model floatModel, SharedSession shared) {
        long alive = Math.max(maxBatch, shared.variants().runner().concurrentRuns());
        return options.keepBytes(floatModel) / (8 * alive);
    }

    /**
     * Per stage, the bytes a measuring pass fetches for one sample (its layers' measured outputs and targets,
     * and the float activations read beside them), from the output shapes of one run of the first sample (no
     * value copied out of ORT): shapes that vary with the input (image sizes, sentence lengths) vary in
     * proportion for every layer, so the stages compare.
     */
    private long[] bytesPerSample(SharedSession shared, Model current, List<List<QdqLayer>> stages,
            CalibrationSource data) {
        List<QdqLayer> all = stages.stream().flatMap(List::stream).toList();
        // The largest sample's, scaled from the first's by their inputs' sizes.
        Sample first = null;
        long largest = 0;
        for (Sample x : data) {
            first = first == null ? x : first;
            largest = Math.max(largest, elements(x));
        }
        double scale = (double) largest / Math.max(1, elements(first));
        Map<String, long[]> got;
        try (OrtRunner fed = shared.variants().runner().fixing(shared.variants().inputsOf(current))) {
            got = fed.shapes(first, StageTargets.measuredTensors(all, shared.outputs(), shared.inGraph()));
        }
        long[] out = new long[stages.size()];
        for (int t = 0; t < stages.size(); t++) {
            for (QdqLayer l : stages.get(t)) {
                long measuredOutput = 4L * HostTensor.numel(got.get(shared.outputs().get(l.name())));
                // The target: computed in the run (as large as the output), or read from the float reference.
                out[t] += (long) Math.ceil(2 * measuredOutput * scale);
            }
        }
        return out;
    }

    private static long elements(Sample sample) {
        long n = 0;
        for (HostTensor t : sample.inputs().values()) {
            n += t.numel();
        }
        return n;
    }

    /** Whether the fits measure on every sample of {@code data}, so that no stage asks for more than one pass gives. */
    private boolean fitsEverySample(CalibrationSource data) {
        return options.samples() <= 0 || options.samples() >= data.size();
    }

    /** The initializers a stage's candidates may change: its layers' weight scales and biases, and the scales given. */
    private static Set<String> parameters(List<QdqLayer> stage, List<String> scales) {
        Set<String> out = new LinkedHashSet<>(scales);
        for (QdqLayer l : stage) {
            for (String n : new String[] {l.weightScale(), l.biasQuantized(), l.biasScale(), l.biasAddConst()}) {
                if (n != null) {
                    out.add(n);
                }
            }
        }
        return out;
    }

    /**
     * The one session of an accepting run ({@link OutputError#shared}): every stage's targets and
     * measured outputs added and exposed at once, every stage's parameters fed. {@code outputs} and
     * {@code inGraph} are, per layer, the tensor measured and the target computed in the run.
     */
    private record SharedSession(OutputError.Variants variants, Map<String, String> outputs,
            Map<String, StageTargets.InGraphTarget> inGraph) {
    }

    /** The shared session for {@code stages} of {@code quant}, or null where ORT does not take the values fed. */
    private SharedSession shared(OutputError judge, Model quant, Model floatModel, List<List<QdqLayer>> stages,
            Map<String, FloatLayer> floats) {
        Map<String, StageTargets.InGraphTarget> inGraph = new HashMap<>();
        Set<String> params = new LinkedHashSet<>();
        Model measuring = quant;
        List<QdqLayer> all = new ArrayList<>();
        for (List<QdqLayer> stage : stages) {
            // Each stage's targets as its own measuring model would have them: a layer's is read before its fold.
            List<QdqLayer> local = options.target() == CwacOptions.Target.LOCAL ? stage
                    : StageSchedule.fedByStage(quant, stage);
            measuring = StageTargets.withTargets(measuring, floatModel, stage, local, floats, residuals, inGraph);
            params.addAll(parameters(stage, OutputScales.of(quant, stage)));
            all.addAll(stage);
        }
        Map<String, String> outputs = new HashMap<>();
        measuring = StageTargets.dequantizedOutputs(measuring, all, outputs);
        OutputError.Variants v = judge.shared(quant, params, measuring,
                StageTargets.measuredTensors(all, outputs, inGraph));
        return v == null ? null : new SharedSession(v, Map.copyOf(outputs), Map.copyOf(inGraph));
    }

    /**
     * A fold's outcome: the model, the fits as folded (a rejected layer's is the identity), and the
     * reasons of the rejected ones.
     */
    public record Folded(Model model, Map<String, ChannelFit> fits, List<dev.qwtonnx.pass.Rejection> rejections) {
    }

    /**
     * Fits {@code layers} of {@code model} from their measured sums ({@link PairedOutputs} or the
     * in-graph measurement: two halves each) with this compensator's method, ridge, gain bound and
     * gate, and folds the fits; {@code skipped} receives the layers whose fit the fold rejected.
     * The one path from sums to a folded model, for the graph's own layers and for Loop/Scan bodies.
     */
    public Folded fitAndFold(Model model, List<QdqLayer> layers, Map<String, ChannelStats[]> stats,
            List<String> skipped) {
        return fold(model, layers, fit(layers, stats, options.method()), skipped);
    }

    private static Folded fold(Model model, List<QdqLayer> layers, Map<String, ChannelFit> fits, List<String> skipped) {
        CwacFold.Outcome outcome = new CwacFold(layers, fits).apply(model);
        return new Folded(outcome.model(), withRejected(fits, outcome.rejected(), skipped),
                outcome.result().rejections());
    }

    /**
     * The fits as folded: a layer the fold rejected has the identity fit (its error as it was), and
     * its reason is added to {@code skipped}.
     */
    private static Map<String, ChannelFit> withRejected(Map<String, ChannelFit> fits,
            List<CwacFold.NotFolded> rejected, List<String> skipped) {
        if (rejected.isEmpty()) {
            return fits;
        }
        Map<String, ChannelFit> out = new LinkedHashMap<>(fits);
        List<QdqLayer> undone = new ArrayList<>();
        for (CwacFold.NotFolded r : rejected) {
            undone.add(r.layer());
            if (!skipped.contains(r.toString())) {
                skipped.add(r.toString());
            }
        }
        out.putAll(identity(undone, fits));
        return out;
    }

    private static List<Sample> first(CalibrationSource source, int max) {
        List<Sample> out = new ArrayList<>();
        for (Sample s : source) {
            if (out.size() == max) {
                break;
            }
            out.add(s);
        }
        return out;
    }

    /** The fits of a stage whose folds were undone: a = 1, b = 0, the error as it was. */
    private static Map<String, ChannelFit> identity(List<QdqLayer> stage, Map<String, ChannelFit> fitted) {
        Map<String, ChannelFit> out = new LinkedHashMap<>();
        for (QdqLayer l : stage) {
            ChannelFit f = fitted.get(l.name());
            double[] a = new double[f.a().length];
            java.util.Arrays.fill(a, 1.0);
            out.put(l.name(), new ChannelFit(a, new double[a.length], f.sseBefore(), f.sseBefore(), f.count()));
        }
        return out;
    }

    /**
     * The float layer our quantized layer {@code l} was made from: the float node its provenance
     * entry names ({@code floatNodes}: the float graph's nodes by their unique names), with the Add
     * after it where {@code l} has a bias Add; null where there is none.
     */
    private static FloatLayer floatCounterpart(GraphEditor fg, Map<String, NodeProto> floatNodes, QdqLayer l) {
        NodeProto n = l.from() == null ? null : floatNodes.get(l.from());
        if (n == null || !n.getOpType().equals(l.kind().opType)) {
            return null;
        }
        // A Conv or Gemm that reads a float bias adds it itself, as its float node does.
        if (l.biasAdd() == null || (l.kind() != LayerKind.MATMUL && l.biasAdd().equals(l.name()))) {
            return new FloatLayer(n, List.of(), n.getOutput(0));
        }
        List<NodeProto> readers = fg.consumers(n.getOutput(0));
        if (readers.size() == 1 && readers.get(0).getOpType().equals("Add")) {
            return new FloatLayer(n, List.of(readers.get(0)), readers.get(0).getOutput(0));
        }
        return null;
    }

    /**
     * Rows per channel a layer's fit has at least, where the calibration set holds them: samples are
     * added to the {@linkplain CwacOptions#samples() capped} ones until every layer has them. Two
     * numbers per channel need a few dozen rows to be stable: a layer with one row per sample (a
     * classifier's head) is measured on 32 samples, while layers with many rows per sample (tokens,
     * pixels) reach that within the cap.
     */
    public static final int MIN_ROWS = 32;

    /**
     * What every measuring pass of one compensation reads and no stage changes: the float model, its kept
     * activations ({@code reference}) and the float counterpart of each layer, the fitting samples, the progress
     * line, and whether the passes run on the quantization grid ({@link Grid}).
     */
    private record MeasuringPasses(Model floatModel, FloatReference reference, Map<String, FloatLayer> floats,
            CalibrationSource data, Progress progress, boolean onGrid) {
    }

    /**
     * Runs the stage's layers over the first {@link CwacOptions#samples()} samples of {@code data},
     * and over more of them if a layer has fewer than {@link #MIN_ROWS} rows per channel, and keeps,
     * per layer, the sums of two folds (by sample parity).
     */
    private Map<String, ChannelStats[]> measure(Model quant, List<QdqLayer> stage, String task, SharedSession shared,
            MeasuringPasses passes) {
        Model floatModel = passes.floatModel();
        FloatReference reference = passes.reference();
        Map<String, FloatLayer> floats = passes.floats();
        CalibrationSource data = passes.data();
        Progress progress = passes.progress();
        boolean onGrid = passes.onGrid();
        // The current parameters, fed beside each sample where the shared session can still take them.
        Map<String, HostTensor> fed = shared == null ? null : shared.variants().inputsOf(quant);
        if (fed == null) {
            shared = null;
        }
        Map<String, StageTargets.InGraphTarget> inGraph = new HashMap<>();
        Map<String, String> outputs = new HashMap<>();
        Model measured = null;
        if (shared != null) {
            for (QdqLayer l : stage) {
                outputs.put(l.name(), shared.outputs().get(l.name()));
                if (shared.inGraph().containsKey(l.name())) {
                    inGraph.put(l.name(), shared.inGraph().get(l.name()));
                }
            }
        } else {
            // Global target: a layer fed by another layer of this stage is measured against its local target,
            // as that layer's compensation is not known yet: against the float activation, both would correct
            // the same upstream error.
            List<QdqLayer> local = options.target() == CwacOptions.Target.LOCAL ? stage
                    : StageSchedule.fedByStage(quant, stage);
            measured = StageTargets.withTargets(quant, floatModel, stage, local, floats, residuals, inGraph);
            measured = StageTargets.dequantizedOutputs(measured, stage, outputs);
        }
        List<String> quantOuts = StageTargets.measuredTensors(stage, outputs, inGraph);
        // The float activations this stage reads from the reference: its layers' whose targets the run does not give.
        List<String> floatOuts = new ArrayList<>();
        for (QdqLayer l : stage) {
            if (!inGraph.containsKey(l.name())) {
                floatOuts.add(floats.get(l.name()).output());
            }
        }
        boolean needsFloat = !floatOuts.isEmpty();
        // Two folds, by sample parity: the cross-validated gate fits on one and scores on the other.
        boolean folds = options.gate() == CwacOptions.Gate.CV;
        Map<String, ChannelStats[]> stats = new LinkedHashMap<>();
        for (QdqLayer l : stage) {
            stats.put(l.name(), new ChannelStats[] {new ChannelStats(l.channels()), new ChannelStats(l.channels())});
        }
        OrtRunner quantRunner;
        Function<Batches.Batch, Sample> inputs;
        int batch;
        if (shared != null) {
            // The shared session runs the whole model with the current parameters fed beside each (joined) sample.
            quantRunner = shared.variants().runner().fixing(fed);
            inputs = Batches.Batch::sample;
            batch = Batches.batchable(InputSpecs.of(quant.graph())) ? maxBatch : 1;
        } else {
            // Only what the stage's outputs depend on runs: an early stage runs the start of the model. The float
            // prefix, where it is the quantized model's, is cut: its outputs, handed over by calibration, are inputs.
            FloatPrefix cut = prefix != null && prefix.usable()
                    && prefix.boundary().equals(FloatPrefix.split(quant.graph(), UnquantizedInputs::quantized).boundary())
                    ? prefix : null;
            Model sliced = cut == null ? Slice.to(measured, quantOuts)
                    : Slice.between(measured, cut.boundaryTypes(), quantOuts);
            inputs = cut == null ? Batches.Batch::sample : cut::withBoundary;
            quantRunner = OrtRunner.of(sliced, List.of(), true, onGrid);
            if (alone) {
                quantRunner.oneRunAtATime();
            }
            batch = Batches.batchable(InputSpecs.of(sliced.graph())) && (cut == null || cut.batchable()) ? maxBatch : 1;
        }
        // The fits measure on the first samples only: two numbers per channel, from rows enough long before the
        // calibration set ends. Batches joined as the calibration joined them find the reference's kept activations.
        CalibrationSource fitted = CalibrationSources.limit(data, options.samples(), null);
        BiConsumer<Batches.Batch, Map<String, FloatTensor>> sum = (b, q) -> {
            Map<String, FloatTensor> f = needsFloat ? reference.get(b, floatOuts) : Map.of();
            // Layer by layer in parallel: ORT's threads are idle while the sums are taken.
            stage.parallelStream().forEach(l -> {
                FloatTensor yq = q.get(outputs.get(l.name()));
                StageTargets.InGraphTarget target = inGraph.get(l.name());
                FloatTensor yf = target != null ? q.get(target.tensor()) : f.get(floats.get(l.name()).output());
                boolean residual = target != null && target.residual();
                ChannelStats[] st = stats.get(l.name());
                int axis = l.outputChannelAxis(yq.shape().length);
                if (!folds) {
                    st[0].add(yq, yf, residual, axis, 0, 1);
                    return;
                }
                for (int i = 0; i < b.count(); i++) {
                    st[b.ordinals().get(i) % 2].add(yq, yf, residual, axis, i, b.count());
                }
            });
        };
        try {
            progress.start(task, fitted.size());
            Batches.run(quantRunner, fitted, batch, 0, inputs, b -> quantOuts, progress, sum);
            progress.finish();
            long rows = fewestRows(stats);
            if (rows > 0 && rows < MIN_ROWS && fitted.size() < data.size()) {
                // Rows grow with samples: as many more as bring the fewest to MIN_ROWS, within the set.
                int want = (int) Math.min(data.size(), (fitted.size() * (long) MIN_ROWS + rows - 1) / rows);
                CalibrationSource more = CalibrationSources.limit(CalibrationSources.skip(data, fitted.size()),
                        want - fitted.size(), null);
                progress.start(task + " (more samples for " + MIN_ROWS + " rows per channel)", more.size());
                Batches.run(quantRunner, more, batch, 0, inputs, b -> quantOuts, progress, sum);
                progress.finish();
            }
        } finally {
            if (shared == null) {
                quantRunner.closeInBackground();
            } else {
                quantRunner.close(); // the fixed inputs; the session stays the shared one's
            }
        }
        return stats;
    }

    /** The fewest rows any channel of any layer has been measured on (both folds). */
    private static long fewestRows(Map<String, ChannelStats[]> stats) {
        long fewest = Long.MAX_VALUE;
        for (ChannelStats[] st : stats.values()) {
            for (int c = 0; c < st[0].channels(); c++) {
                fewest = Math.min(fewest, st[0].n[c] + st[1].n[c]);
            }
        }
        return fewest == Long.MAX_VALUE ? 0 : fewest;
    }

    /** The stage's fits of the given method from the measured sums (the cross-validated gate if asked). */
    private Map<String, ChannelFit> fit(List<QdqLayer> stage, Map<String, ChannelStats[]> stats,
            CwacOptions.Method method) {
        Map<String, ChannelFit> fits = new LinkedHashMap<>();
        for (QdqLayer l : stage) {
            ChannelStats[] st = stats.get(l.name());
            // A per-tensor weight scale cannot take a gain per channel: such a layer is shifted only.
            CwacOptions.Method m = l.perTensor() && method == CwacOptions.Method.CWAC ? CwacOptions.Method.BIAS : method;
            fits.put(l.name(), options.gate() == CwacOptions.Gate.CV
                    ? Solver.fitCrossValidated(st[0], st[1], m, l.hasBias(), options.ridge(), options.maxGain())
                    : Solver.fit(ChannelStats.sum(st[0], st[1]), m, l.hasBias(), options.ridge(),
                            options.maxGain()));
        }
        return fits;
    }

}
