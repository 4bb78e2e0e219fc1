package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AHEAD;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION_PLAN;
import static dev.qwtonnx.run.QuantizeRun.EXPOSED_SHAPES;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_PASS;
import static dev.qwtonnx.run.QuantizeRun.PLAN;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;

import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.model.Model;
import java.util.List;
import java.util.Map;

/**
 * CWAC: measures each quantized layer against its float target on the calibration samples, fits
 * {@code yf ≈ a_c·yq + b_c} per output channel, and folds the fit into the layer's weight scale and
 * bias. No node is added.
 */
final class CompensateStage extends QuantizeStage {
    static final String NAME = "compensate";

    CompensateStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PREPARED, PLAN, QUANTIZED, COMPENSATION_PLAN, AHEAD, FLOAT_PASS, EXPOSED_SHAPES),
                List.of(COMPENSATION));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        Compensator.Result result;
        if (facts.get(PLAN).layers().isEmpty()) {
            // Only If branches or Loop/Scan bodies hold layers: nothing to compensate at the top level.
            result = new Compensator(options.cwac()).compensate(prepared, prepared, List.of(), Map.of(), List.of(),
                    ctx.calibration(), null, ctx.progress(), null);
        } else {
            Map<String, long[]> shapes = facts.get(EXPOSED_SHAPES);
            result = new Compensator(options.cwac(), CalibrateStage.batch(options.calib(), shapes),
                    facts.get(AHEAD).residuals(), facts.get(COMPENSATION_PLAN).prefix(),
                    CalibrateStage.runsAlone(shapes)).compensate(prepared, facts.get(QUANTIZED), ctx.calibration(),
                            ctx.heldOut(), ctx.progress(), facts.get(FLOAT_PASS).floats());
        }
        if (result.spent().passes() > 0) {
            ctx.log().accept("compensation's time: " + result.spent());
        }
        facts.put(COMPENSATION, result);
    }
}
