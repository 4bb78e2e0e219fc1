package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.EXPOSED_SHAPES;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_SESSION;
import static dev.qwtonnx.run.QuantizeRun.MATCHED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.quant.CostModel;
import dev.qwtonnx.quant.LayerMatcher;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * On targets that run on ORT's CPU provider, the layers whose int8 form the cost model estimates slower
 * than float (with the Q/DQ transitions it adds or removes) stay float, because a user quantizes to go
 * faster; {@code --keep-slow-int8} quantizes them anyway. The shapes come from the float session on the
 * first calibration sample, so the same input gives the same plan on every machine (decision 0016).
 * The same run gives, on every target, the shapes of everything the float session exposes, from which
 * calibration judges whether to make the session again with fewer outputs ({@link CalibrateStage}).
 */
final class Int8CostStage extends QuantizeStage {
    Int8CostStage(QuantizeRun.Options options) {
        super("int8-cost", options, List.of(PREPARED, MATCHED, FLOAT_SESSION), List.of(AFFORDABLE, EXPOSED_SHAPES));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        LayerMatcher.Result matched = facts.get(MATCHED);
        FloatSessionStage.FloatSession pass = facts.get(FLOAT_SESSION);
        Sample first = null;
        for (Sample s : ctx.calibration()) {
            first = s;
            break;
        }
        // Shapes only: the values of every calibrated tensor (80 MB on the recognizer) are never read. Those of
        // everything the session exposes also tell calibration how much its outputs hold per run, on every target.
        Map<String, long[]> shapes = first == null || pass.runner() == null || matched.layers().isEmpty() ? Map.of()
                : pass.runner().shapes(first, pass.exposed());
        facts.put(EXPOSED_SHAPES, shapes);
        if (options.quant().keepSlowInt8() || !options.quant().target().ortCpu() || shapes.isEmpty()) {
            facts.put(AFFORDABLE, matched);
            return;
        }
        List<CostModel.Slower> slower = CostModel.slowerInInt8(facts.get(PREPARED).graph(), matched.layers(), shapes);
        if (slower.size() == matched.layers().size()) {
            ctx.log().accept("every layer is estimated slower in int8 than in float, so none is quantized; --keep-slow-int8 quantizes them anyway");
        }
        Map<String, LayerMatcher.Kept> why = new LinkedHashMap<>();
        for (CostModel.Slower s : slower) {
            ctx.log().accept("kept in float (cost): " + s.layer() + ", " + s.reason());
            ctx.reject(name(), s.layer(), "kept in float: " + s.reason());
            why.put(s.layer(), new LayerMatcher.Kept(LayerMatcher.Reason.SLOWER, s.reason()));
        }
        facts.put(AFFORDABLE, matched.keepingFloat(why));
    }
}
