package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION_PLAN;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_SESSION;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.cwac.StageSchedule;
import dev.qwtonnx.cwac.FloatPrefix;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What compensation needs from the float pass that calibration makes anyway: the float layer
 * outputs it compares with, and the float prefix whose outputs its measuring models start from,
 * for the layers left after the cost model. An analysis: calibration consumes it, so calibration
 * never asks compensation.
 */
final class PlanCompensationStage extends QuantizeStage {
    /**
     * @param reference float layer outputs compensation compares with (those of the layers measured
     *     against the float model that other layers feed), empty when it measures local targets only
     * @param prefix the float prefix cut off the measuring models, or null
     */
    record Plan(List<String> reference, FloatPrefix prefix) {
    }

    PlanCompensationStage(QuantizeRun.Options options) {
        super("plan-compensation", options, List.of(PREPARED, AFFORDABLE, FLOAT_SESSION), List.of(COMPENSATION_PLAN));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        // The layers the cost model left: the float session exposes the outputs of all the matched ones.
        LayerMatcher.Result plan = facts.get(AFFORDABLE);
        FloatSessionStage.FloatSession session = facts.get(FLOAT_SESSION);
        if (plan.layers().isEmpty()) {
            facts.put(COMPENSATION_PLAN, new Plan(List.of(), null));
            return;
        }
        Set<String> global = StageSchedule.referenceTargets(prepared.graph(), plan.layers(), LayerPlan::name,
                LayerPlan::input, options.cwac());
        List<String> outs = new ArrayList<>();
        for (LayerPlan l : plan.layers()) {
            if (global.contains(l.name())) {
                outs.add(l.output());
            }
        }
        // The prefix ahead of these layers is cut where the session computes its boundary (that of the matched
        // layers' prefix, which it is unless the cost model left early layers in float).
        FloatPrefix prefix = FloatPrefix.plan(prepared, plan.layers(), options.cwac());
        if (prefix != null && !session.exposes(prefix.boundary())) {
            prefix = null;
        }
        facts.put(COMPENSATION_PLAN, new Plan(List.copyOf(outs), prefix));
    }
}
