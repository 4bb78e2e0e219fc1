package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.ACCURACY;
import static dev.qwtonnx.run.QuantizeRun.KEPT_FLOAT;
import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.Sensitivity;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --float-budget N}: ranks the matched layers by the output error each causes when quantized
 * alone, on a few calibration samples, and keeps the worst N in float, besides those the accuracy
 * target returned to float. Without either the plan is the matched layers the cost stage left in int8.
 */
final class FloatBudgetStage extends QuantizeStage {
    /** Samples the per-layer sensitivity analysis runs on: enough to rank layers, cheap enough to run per layer. */
    static final int SENSITIVITY_SAMPLES = 16;

    FloatBudgetStage(QuantizeRun.Options options) {
        super("float-budget", options, List.of(PREPARED, AFFORDABLE, RANGES, ROUNDED, ACCURACY), List.of(PLAN, KEPT_FLOAT));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        LayerMatcher.Result matched = facts.get(AFFORDABLE);
        Map<String, LayerMatcher.Kept> why = new LinkedHashMap<>();
        facts.get(ACCURACY).returned().forEach(r -> why.put(r.layer(),
                new LayerMatcher.Kept(LayerMatcher.Reason.ACCURACY_TARGET, r.why())));
        if (options.quant().floatBudget() == 0 || matched.layers().isEmpty()) {
            facts.put(PLAN, why.isEmpty() ? matched : matched.keepingFloat(why));
            facts.put(KEPT_FLOAT, List.of());
            return;
        }
        Model prepared = facts.get(PREPARED);
        List<Sample> few = new ArrayList<>();
        for (Sample s : ctx.calibration()) {
            if (few.size() == SENSITIVITY_SAMPLES) {
                break;
            }
            few.add(s);
        }
        List<Sensitivity.LayerError> ranked = new ArrayList<>(Sensitivity.rank(prepared, matched.layers(),
                facts.get(RANGES), facts.get(ROUNDED), options.quant(), few, ctx.progress()));
        ranked.removeIf(e -> why.containsKey(e.layer()));
        List<Sensitivity.LayerError> kept = List.copyOf(ranked.subList(0, Math.min(options.quant().floatBudget(),
                ranked.size())));
        for (Sensitivity.LayerError e : kept) {
            String error = String.format("relative output error %.3g when quantized alone", e.relativeError());
            ctx.log().accept("kept in float (budget): " + e.layer() + ", " + error);
            ctx.reject(name(), e.layer(), "kept in float by the budget: " + error);
            why.put(e.layer(), new LayerMatcher.Kept(LayerMatcher.Reason.FLOAT_BUDGET,
                    "kept in float by --float-budget (" + error + ")"));
        }
        LayerMatcher.Result plan = matched.keepingFloat(why);
        if (plan.layers().isEmpty()) {
            throw new QwtException("the float budget of " + options.quant().floatBudget()
                    + " layers leaves no layer to quantize");
        }
        facts.put(PLAN, plan);
        facts.put(KEPT_FLOAT, kept);
    }
}
