package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AHEAD;
import static dev.qwtonnx.run.QuantizeRun.MATCHED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;

import dev.qwtonnx.quant.GptqRounder;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantizedWeight;
import dev.qwtonnx.quant.WeightRounding;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The int8 weights: rounded to nearest by the thread ahead, or by GPTQ with error feedback from the calibration inputs. */
final class RoundWeightsStage extends QuantizeStage {
    RoundWeightsStage(QuantizeRun.Options options) {
        super("round-weights", options, List.of(PREPARED, MATCHED, AHEAD), List.of(ROUNDED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        LayerMatcher.Result plan = facts.get(MATCHED);
        Map<String, QuantizedWeight> rounded;
        if (plan.layers().isEmpty()) {
            rounded = Map.of();
        } else if (options.quant().effectiveRounding() == WeightRounding.GPTQ) {
            rounded = GptqRounder.round(facts.get(PREPARED), plan.layers(), options.quant(), ctx.calibration(),
                    ctx.progress());
        } else {
            rounded = new LinkedHashMap<>();
            for (var e : facts.get(AHEAD).nearest().entrySet()) {
                QuantizedWeight w = e.getValue().get();
                if (w != null) {
                    rounded.put(e.getKey(), w);
                }
            }
        }
        facts.put(ROUNDED, rounded);
    }
}
