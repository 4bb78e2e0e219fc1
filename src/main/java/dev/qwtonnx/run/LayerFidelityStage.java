package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.DESTINATION;
import static dev.qwtonnx.run.QuantizeRun.FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.LAYER_FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.MODEL;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.LayerCounterparts;
import dev.qwtonnx.verify.LayerFidelityMeter;
import dev.qwtonnx.verify.QuantizedLayers;
import java.util.List;
import java.util.Map;

/**
 * Each quantized layer's SQNR against its float counterpart on the held-out samples, global and
 * local (see {@link LayerFidelityMeter}): measured once, in one pass over the samples, for the
 * report's per-layer table and for the warning of {@link FidelityCheckStage}, which names the layers
 * with the largest error of their own. Measured only when one of them reads it: a report is asked
 * for, or an output's fidelity is poor without an accuracy target.
 */
final class LayerFidelityStage extends QuantizeStage {
    /** The layers found in the QDQ model, their float counterparts, and each one's figures by node name. */
    record Measured(LayerCounterparts.Result matched, Map<String, LayerFidelityMeter.Figures> figures) {
        static final Measured NONE = new Measured(null, Map.of());

        boolean measured() {
            return matched != null;
        }
    }

    LayerFidelityStage(QuantizeRun.Options options) {
        super("layer-fidelity", options, List.of(PREPARED, MODEL, FIDELITY, DESTINATION),
                List.of(LAYER_FIDELITY));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        boolean report = !facts.get(DESTINATION).reports().isEmpty();
        boolean warns = !options.accuracy().hasTarget() && !FidelityCheckStage.poor(facts.get(FIDELITY)).isEmpty();
        if (!report && !warns) {
            facts.put(LAYER_FIDELITY, Measured.NONE);
            return;
        }
        facts.put(LAYER_FIDELITY, measure(facts.get(PREPARED), facts.get(MODEL), ctx));
    }

    static Measured measure(Model floatModel, Model quantModel, RunContext ctx) {
        LayerCounterparts.Result matched = LayerCounterparts.match(floatModel, QuantizedLayers.find(quantModel));
        Map<String, LayerFidelityMeter.Figures> figures = matched.matched().isEmpty() ? Map.of()
                : LayerFidelityMeter.measure(floatModel, quantModel, matched.matched(), ctx.measured(), ctx.progress(),
                        "per-layer fidelity");
        return new Measured(matched, figures);
    }
}
