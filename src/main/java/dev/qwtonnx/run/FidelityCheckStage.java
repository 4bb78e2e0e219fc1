package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.ACCURACY;
import static dev.qwtonnx.run.QuantizeRun.FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;
import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;
import static dev.qwtonnx.run.QuantizeRun.WARNINGS;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.TargetFidelity;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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

    FidelityCheckStage(QuantizeRun.Options options) {
        super("fidelity-check", options, List.of(PREPARED, OUTPUT, FIDELITY, ACCURACY, PLAN, RANGES, ROUNDED),
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
            List<Fidelity.OutputFidelity> poor = facts.get(FIDELITY).stream()
                    .filter(o -> (o.meanCosine() < POOR_COSINE || o.meanSqnrDb() < POOR_SQNR_DB)
                            && o.maxAbsError() >= NEGLIGIBLE_ERROR).toList();
            if (!poor.isEmpty()) {
                String layers = suggestions(ctx, facts);
                for (Fidelity.OutputFidelity o : poor) {
                    lines.add(String.format(Locale.ROOT, "warning: poor fidelity of output '%s' on %s: SQNR %.2f dB, "
                            + "cosine %.5f (below %.0f dB or %.2f); the layers whose quantization alone hurts most: %s "
                            + "(--min-sqnr DB returns layers to float until a target holds)", o.output(), on,
                            o.meanSqnrDb(), o.meanCosine(), POOR_SQNR_DB, POOR_COSINE, layers));
                }
            }
        }
        lines.forEach(ctx.log());
        facts.put(WARNINGS, List.copyOf(lines));
        if (acc.strict() && !lines.isEmpty()) {
            throw new FidelityShortfall(lines);
        }
    }

    /** The few layers of the plan whose quantization alone hurts the outputs most, on a few calibration samples. */
    private String suggestions(RunContext ctx, Facts facts) {
        LayerMatcher.Result plan = facts.get(PLAN);
        if (plan.layers().isEmpty()) {
            return "none quantized";
        }
        List<Sample> few = new ArrayList<>();
        for (Sample s : ctx.calibration()) {
            if (few.size() == FloatBudgetStage.SENSITIVITY_SAMPLES) {
                break;
            }
            few.add(s);
        }
        List<Sensitivity.LayerError> ranked = Sensitivity.rank(facts.get(PREPARED), plan.layers(), facts.get(RANGES),
                facts.get(ROUNDED), options.quant(), few, ctx.progress());
        // A model of two or three layers gets one fewer named than it has: naming every layer says nothing.
        int n = Math.min(SUGGESTED, Math.max(1, ranked.size() - 1));
        return ranked.subList(0, n).stream().map(Sensitivity.LayerError::layer).collect(Collectors.joining(", "));
    }
}
