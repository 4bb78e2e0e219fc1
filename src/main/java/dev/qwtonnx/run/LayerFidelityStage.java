package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.DESTINATION;
import static dev.qwtonnx.run.QuantizeRun.EXPOSED_SHAPES;
import static dev.qwtonnx.run.QuantizeRun.FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.LAYER_FIDELITY;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.QUANTIZED;

import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.LayerCounterparts;
import dev.qwtonnx.verify.LayerFidelityMeter;
import dev.qwtonnx.verify.QuantizedLayers;
import dev.qwtonnx.verify.Verifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Each quantized layer's SQNR against its float counterpart on the held-out samples, global and
 * local (see {@link LayerFidelityMeter}): measured once, in one pass over the samples, for the
 * report's per-layer table (with the model before compensation, in the same pass, where
 * {@link Destination#layersBefore()} asks for it) and for the
 * warning of {@link FidelityCheckStage}, which picks its candidates by each layer's own error, input
 * quantization counted. Measured only when one of them reads it: a report is asked for, or an
 * output's fidelity is poor without an accuracy target.
 */
final class LayerFidelityStage extends QuantizeStage {
    /**
     * The layers found in the written model (QDQ, or lowered to integer operators that keep their layer
     * nodes' names), their float counterparts, and each one's figures by node name.
     */
    record Measured(LayerCounterparts.Result matched, Map<String, LayerFidelityMeter.Figures> figures,
            Map<String, LayerFidelityMeter.Figures> before) {
        static final Measured NONE = new Measured(null, Map.of(), null);

        boolean measured() {
            return matched != null;
        }
    }

    /**
     * Held-out samples the per-layer figures are measured on, at most: each costs a run of the float
     * model and of two measuring models, each copying every layer's result out of ORT, and a layer's
     * SQNR over 8 samples ranks the layers as over more; the output fidelity uses them all.
     */
    static final int SAMPLES = 8;

    LayerFidelityStage(QuantizeRun.Options options) {
        super("layer-fidelity", options, List.of(PREPARED, OUTPUT, QUANTIZED, FIDELITY, DESTINATION, EXPOSED_SHAPES),
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
        // Each layer before compensation, where asked: measured in the same pass (one float pass for both).
        boolean before = report && facts.get(DESTINATION).layersBefore();
        facts.put(LAYER_FIDELITY, measure(facts.get(PREPARED), facts.get(OUTPUT), before ? facts.get(QUANTIZED) : null,
                warns, pass(facts.get(EXPOSED_SHAPES)), ctx));
    }

    /**
     * One run at a time where calibration and compensation run so, the samples' activations being large
     * ({@code shapes}: the float session's outputs on the first calibration sample); see
     * {@link LayerFidelityMeter.Pass}.
     */
    static LayerFidelityMeter.Pass pass(Map<String, long[]> shapes) {
        return new LayerFidelityMeter.Pass(true, CalibrateStage.runsAlone(shapes));
    }

    /** Figures of {@code quantModel}'s layers, and of {@code before}'s (null: not measured); own errors where asked. */
    static Measured measure(Model floatModel, Model quantModel, Model before, boolean own, LayerFidelityMeter.Pass pass,
            RunContext ctx) {
        LayerCounterparts.Result matched = LayerCounterparts.match(floatModel, QuantizedLayers.find(quantModel));
        if (matched.matched().isEmpty()) {
            return new Measured(matched, Map.of(), before == null ? null : Map.of());
        }
        List<LayerFidelityMeter.Subject> subjects = new ArrayList<>();
        subjects.add(new LayerFidelityMeter.Subject(quantModel, matched.matched()));
        List<LayerCounterparts.Match> beforeMatches = before == null ? List.of()
                : Verifier.beforeMatches(before, matched.matched());
        if (!beforeMatches.isEmpty()) {
            subjects.add(new LayerFidelityMeter.Subject(before, beforeMatches));
        }
        List<Map<String, LayerFidelityMeter.Figures>> figures = LayerFidelityMeter.measure(floatModel, subjects, own,
                CalibrationSources.limit(ctx.measured(), SAMPLES, null), ctx.progress(), "per-layer fidelity", pass);
        return new Measured(matched, figures.get(0),
                before == null ? null : beforeMatches.isEmpty() ? Map.of() : figures.get(1));
    }
}
