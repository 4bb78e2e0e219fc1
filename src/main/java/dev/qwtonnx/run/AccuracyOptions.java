package dev.qwtonnx.run;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.verify.OutputMetric;
import dev.qwtonnx.verify.TargetFidelity;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The accuracy a run must reach on the samples it measures on, and what happens when it does not.
 *
 * @param goals    each a metric and the mean it must reach; none: no target (the run only warns)
 * @param strict   a missed target or poor fidelity stops the run before the output is written
 * @param maxFloat most layers the search returns to float; 0: half the quantized layers, rounded up
 */
public record AccuracyOptions(List<Goal> goals, boolean strict, int maxFloat) {
    /** No target, no strictness: the run warns when fidelity is poor. */
    public static final AccuracyOptions NONE = new AccuracyOptions(List.of(), false, 0);

    /**
     * One goal: a built-in metric by its {@code --metric} name (sqnr, cosine: every float output;
     * top1, iou:THRESHOLD: the first output), or an application's own metric, and the minimum mean.
     */
    public record Goal(String metric, OutputMetric custom, double min) {
        public Goal {
            if ((metric == null) == (custom == null)) {
                throw new IllegalArgumentException("a goal names a built-in metric or gives its own, not both");
            }
            if (metric != null) {
                OutputMetric.check(metric);
            }
            if (!Double.isFinite(min)) {
                throw new QwtException("an accuracy target must be a finite number, got " + min);
            }
        }

        List<TargetFidelity.Bound> bounds(List<String> outputs) {
            List<OutputMetric> m = custom != null ? List.of(custom) : OutputMetric.parse(metric, outputs);
            return m.stream().map(x -> new TargetFidelity.Bound(x, min)).toList();
        }
    }

    public AccuracyOptions {
        goals = List.copyOf(goals);
        if (maxFloat < 0) {
            throw new QwtException("the most layers returned to float must be 0 (half) or more, got " + maxFloat);
        }
    }

    public boolean hasTarget() {
        return !goals.isEmpty();
    }

    public AccuracyOptions withGoal(Goal g) {
        List<Goal> all = new ArrayList<>(goals);
        all.add(Objects.requireNonNull(g, "goal"));
        return new AccuracyOptions(all, strict, maxFloat);
    }

    public AccuracyOptions withStrict(boolean on) {
        return new AccuracyOptions(goals, on, maxFloat);
    }

    public AccuracyOptions withMaxFloat(int n) {
        return new AccuracyOptions(goals, strict, n);
    }

    /** Every goal's bounds on the model's float {@code outputs}. */
    public List<TargetFidelity.Bound> bounds(List<String> outputs) {
        List<TargetFidelity.Bound> b = new ArrayList<>();
        for (Goal g : goals) {
            b.addAll(g.bounds(outputs));
        }
        return b;
    }

    /** The search's limit for a plan of {@code layers} quantized layers. */
    int maxFloat(int layers) {
        return maxFloat > 0 ? Math.min(maxFloat, layers) : (layers + 1) / 2;
    }
}
