package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.ACCURACY;
import static dev.qwtonnx.run.QuantizeRun.FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.IF_BRANCHES;
import static dev.qwtonnx.run.QuantizeRun.INPUT;
import static dev.qwtonnx.run.QuantizeRun.LAYER_FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;
import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;
import static dev.qwtonnx.run.QuantizeRun.WARNINGS;

import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.LayerFidelityMeter;
import dev.qwtonnx.verify.TargetFidelity;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Judges the output before it is written. With an accuracy target, measures the target on the
 * output (compensated, in its written format) and says by how much it is missed; without one, warns
 * when an output's held-out fidelity is poor ({@link #POOR_COSINE}, {@link #POOR_SQNR_DB}, errors above
 * {@link #NEGLIGIBLE_ERROR}), naming the
 * layers whose quantization alone hurts the outputs most (the sensitivity ranking: cheap, and a
 * hint; the target's search measures layers together). With {@code --strict} a warning stops the
 * run here, before save.
 */
final class FidelityCheckStage extends QuantizeStage {
    /** Below this mean cosine an output is poor (see docs/decisions/0014-accuracy-target.md). */
    static final double POOR_COSINE = 0.98;
    /** Below this mean SQNR an output is poor. */
    static final double POOR_SQNR_DB = 15;
    /**
     * An output whose largest error is below this is never poor: float32's resolution at unit scale,
     * where the ratios of a near-silent output (a detector's map of a page without text) are noise.
     */
    static final double NEGLIGIBLE_ERROR = 1e-6;
    /** Layers a warning names at most. */
    static final int SUGGESTED = 3;
    /** Layers whose effect alone on the outputs is measured for the warning, at most. */
    static final int CANDIDATES = 6;
    /** The earliest layers, measured as candidates too: an error made there crosses every layer after it. */
    static final int EARLIEST = 2;
    /** Calibration samples that effect is measured on. */
    static final int HINT_SAMPLES = 4;

    FidelityCheckStage(QuantizeRun.Options options) {
        super("fidelity-check", options,
                List.of(INPUT, PREPARED, OUTPUT, FIDELITY, ACCURACY, PLAN, RANGES, ROUNDED, LAYER_FIDELITY, IF_BRANCHES),
                List.of(WARNINGS));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        List<String> lines = new ArrayList<>();
        AccuracyOptions acc = options.accuracy();
        Model prepared = facts.get(PREPARED);
        String on = ctx.measured().size() + (ctx.heldOut() != null ? " held-out samples" : " calibration samples");
        if (acc.hasTarget()) {
            TargetFidelity.Figures f = new TargetFidelity(prepared, ctx.measured()).measure(facts.get(OUTPUT),
                    acc.bounds(TargetFidelity.floatOutputs(prepared)));
            AccuracySearch search = facts.get(ACCURACY);
            int returned = search.returned().size();
            if (!f.met()) {
                lines.add(String.format(Locale.ROOT, "warning: accuracy target not met on %s: %s, with %d layer%s "
                        + "returned to float (at most %d)", on, f.describeWorst(), returned, returned == 1 ? "" : "s",
                        search.limit()));
            } else {
                ctx.log().accept("accuracy target met on " + on + ": " + f.describeWorst());
            }
        } else {
            List<Fidelity.OutputFidelity> poor = poor(facts.get(FIDELITY));
            if (!poor.isEmpty()) {
                String layers = suggestions(ctx, facts);
                // Clipping outliers is what fixed every zoo model the warning fired on under min/max ranges, but
                // costs some models that read well (decision 0001); a run with --calibrate auto (the default) has
                // tried it already (QuantizeRun.run).
                String clip = options.calib().method() == RangeMethod.MINMAX
                        && !QuantizeRun.clipsWherePoor(options, facts.get(INPUT).serializedSize())
                        ? "; --calibrate percentile clips outlier activations" : "";
                for (Fidelity.OutputFidelity o : poor) {
                    lines.add(String.format(Locale.ROOT, "warning: poor fidelity of output '%s' on %s: SQNR %.2f dB, "
                            + "cosine %.5f (below %.0f dB or %.2f); the layers whose quantization alone hurts most: %s "
                            + "(--min-sqnr DB returns layers to float until a target holds%s)", o.output(), on,
                            o.meanSqnrDb(), o.meanCosine(), POOR_SQNR_DB, POOR_COSINE, layers, clip));
                }
            }
        }
        lines.forEach(ctx.log());
        facts.put(WARNINGS, List.copyOf(lines));
        if (acc.strict() && !lines.isEmpty()) {
            throw new FidelityShortfall(lines);
        }
    }

    /** The outputs whose held-out fidelity is poor (see the thresholds above). */
    static List<Fidelity.OutputFidelity> poor(List<Fidelity.OutputFidelity> outputs) {
        return outputs.stream().filter(o -> (o.meanCosine() < POOR_COSINE || o.meanSqnrDb() < POOR_SQNR_DB)
                && o.maxAbsError() >= NEGLIGIBLE_ERROR).toList();
    }

    /**
     * The few layers of the plan whose quantization alone hurts the outputs most, on a few calibration
     * samples. Measuring that costs a session per layer, so only a few candidates are measured (see
     * {@link #candidates}): the layers with the lowest SQNR of their own, input quantization included
     * (the per-layer fidelity measured for the report), and the earliest. A layer's own error is what
     * it adds before downstream layers amplify or damp it, so this is a hint, as the warning says.
     */
    private String suggestions(RunContext ctx, Facts facts) {
        LayerMatcher.Result plan = facts.get(PLAN);
        if (plan.layers().isEmpty()) {
            // Layers quantized inside If branches or Loop bodies are quantized by runs of their own, not ranked here;
            // the quantized branches are named (the accuracy target returns them to float whole).
            List<String> branches = facts.get(IF_BRANCHES).stream().filter(b -> b.result() != null)
                    .map(b -> "If node '" + b.ifNode() + "' " + b.branch() + " ("
                            + b.result().plan().layers().size() + " quantized)").toList();
            return branches.isEmpty() ? "none at the top level of the graph (look inside its Loop/Scan bodies)"
                    : "none at the top level of the graph; quantized inside: " + String.join(", ", branches);
        }
        List<Sample> few = new ArrayList<>();
        for (Sample s : ctx.calibration()) {
            if (few.size() == HINT_SAMPLES) {
                break;
            }
            few.add(s);
        }
        List<LayerPlan> candidates = candidates(plan.layers(), facts.get(LAYER_FIDELITY).figures());
        List<Sensitivity.LayerError> ranked = Sensitivity.rank(facts.get(PREPARED), candidates, facts.get(RANGES),
                facts.get(ROUNDED), options.quant(), few, ctx.progress());
        Map<String, LayerFidelityMeter.Figures> figures = facts.get(LAYER_FIDELITY).figures();
        for (Sensitivity.LayerError e : ranked) {
            ctx.log().accept(String.format(Locale.ROOT, "layer %s: own SQNR %.2f dB, output error alone %.4g",
                    e.layer(), ownDb(figures.get(e.layer())), e.relativeError()));
        }
        // A model of two or three layers gets one fewer named than it has: naming every layer says nothing.
        int n = Math.min(SUGGESTED, Math.max(1, Math.min(ranked.size(), plan.layers().size() - 1)));
        return ranked.subList(0, n).stream().map(Sensitivity.LayerError::layer).collect(Collectors.joining(", "));
    }

    /**
     * The {@link #EARLIEST} first layers of {@code layers} (in plan order, which is the graph's) and
     * the {@link #CANDIDATES} others with the lowest SQNR of their own (input quantization included
     * where measured, else without it, else global; layers without figures last).
     */
    static List<LayerPlan> candidates(List<LayerPlan> layers, Map<String, LayerFidelityMeter.Figures> figures) {
        if (layers.size() <= CANDIDATES + EARLIEST) {
            return layers;
        }
        List<LayerPlan> sorted = new ArrayList<>(layers.subList(EARLIEST, layers.size()));
        sorted.sort(Comparator.comparingDouble(l -> ownDb(figures.get(l.name()))));
        List<LayerPlan> out = new ArrayList<>(layers.subList(0, EARLIEST));
        out.addAll(sorted.subList(0, CANDIDATES));
        return List.copyOf(out);
    }

    private static double ownDb(LayerFidelityMeter.Figures f) {
        if (f == null) {
            return Double.POSITIVE_INFINITY;
        }
        return f.ownMeanDb() != null ? f.ownMeanDb() : f.localMeanDb() != null ? f.localMeanDb() : f.meanDb();
    }
}
