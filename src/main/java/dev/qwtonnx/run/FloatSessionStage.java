package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.FLOAT_SESSION;
import static dev.qwtonnx.run.QuantizeRun.MATCHED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.InGraphMinMax;
import dev.qwtonnx.calib.InGraphTails;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.cwac.FloatPrefix;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.ActivationMatMulQuantizer;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The float session of the calibration pass, planned before the layers are final: the int8 cost
 * model reads the activations' shapes from it, and compensation is planned on the layers that stay
 * after that, so the float outputs calibration keeps for compensation are the ones it compares
 * with. It exposes, besides what calibration observes, the output of every matched layer (any of
 * them can be a layer compensation compares with the float model) and the boundary of the float
 * prefix ahead of the matched layers.
 */
final class FloatSessionStage extends QuantizeStage {
    /**
     * The session and what it computes: each calibrated tensor's range method, the in-graph min/max
     * reductions, and the tensors a run can fetch. The session is made when a stage first runs it
     * (int8-cost reads the shapes from it); a run made again with percentile ranges has the shapes and
     * the plan already, and calibration then makes only the session it keeps, with the outputs the plan
     * fetches ({@link CalibrateStage}). Handed over to the calibration pass's
     * {@link CalibrateStage.FloatPass}, which closes it; closed here only if the run stops before.
     */
    static final class FloatSession implements AutoCloseable {
        static final FloatSession NONE = new FloatSession(Map.of(), null, Set.of());

        private final Map<String, RangeMethod> methods;
        private final InGraphMinMax.Reduced reduced;
        private final Set<String> exposed;
        private OrtRunner runner;
        private boolean handedOver;

        FloatSession(Map<String, RangeMethod> methods, InGraphMinMax.Reduced reduced, Set<String> exposed) {
            this.methods = methods;
            this.reduced = reduced;
            this.exposed = exposed;
        }

        /** Whether there is a session to run (none where no layer is matched). */
        boolean present() {
            return reduced != null;
        }

        /** The session exposing every tensor of {@link #exposed}, made on the first call. */
        OrtRunner runner() {
            if (runner == null && present()) {
                runner = OrtRunner.forPasses(reduced.model(), exposed);
            }
            return runner;
        }

        /** Whether the session has been made. */
        boolean made() {
            return runner != null;
        }

        Map<String, RangeMethod> methods() {
            return methods;
        }

        InGraphMinMax.Reduced reduced() {
            return reduced;
        }

        /** What a run can fetch: the calibrated tensors, their reductions, the layers' outputs, the prefix boundary. */
        Set<String> exposed() {
            return exposed;
        }

        /** Whether a run can fetch every one of {@code names}. */
        boolean exposes(Set<String> names) {
            return exposed.containsAll(names);
        }

        /** The runner, now the caller's to close. */
        OrtRunner handOver() {
            OrtRunner r = runner();
            handedOver = true;
            return r;
        }

        @Override
        public void close() {
            if (runner != null && !handedOver) {
                runner.close();
            }
        }
    }

    FloatSessionStage(QuantizeRun.Options options) {
        super("float-session", options, List.of(PREPARED, MATCHED), List.of(FLOAT_SESSION));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        LayerMatcher.Result plan = facts.get(MATCHED);
        if (plan.layers().isEmpty()) {
            facts.put(FLOAT_SESSION, FloatSession.NONE);
            return;
        }
        CalibOptions co = options.calib();
        Set<String> wanted = calibrated(prepared, plan, options.quant().target());
        Map<String, RangeMethod> methods = co.overrides().resolve(prepared.graph(), wanted, co.method());
        if (!co.overrides().isEmpty()) {
            methods.forEach((t, m) -> ctx.log().accept("range of '" + t + "': " + m.label()));
        }
        // Min/max and percentile ranges are reduced in the session (two scalars, or the tails, per run, not the
        // activation); entropy and MSE need the values, and compensation the reference and prefix activations.
        List<String> minMax = methods.entrySet().stream().filter(e -> e.getValue() == RangeMethod.MINMAX)
                .map(Map.Entry::getKey).toList();
        List<String> tails = methods.entrySet().stream().filter(e -> e.getValue() == RangeMethod.PERCENTILE)
                .map(Map.Entry::getKey).toList();
        InGraphMinMax.Reduced reduced = InGraphTails.attach(InGraphMinMax.attach(prepared, minMax), tails,
                co.percentile());
        // The tensors themselves stay outputs too (a run copies only what it fetches): int8-cost reads their shapes.
        Set<String> exposed = new LinkedHashSet<>(methods.keySet());
        exposed.addAll(reduced.fetched());
        for (LayerPlan l : plan.layers()) {
            exposed.add(l.output());
        }
        FloatPrefix prefix = FloatPrefix.plan(prepared, plan.layers(), options.cwac());
        if (prefix != null) {
            exposed.addAll(prefix.boundary());
        }
        facts.put(FLOAT_SESSION, new FloatSession(methods, reduced, Set.copyOf(exposed)));
    }

    /** The layers' inputs (and outputs where quantized), and those of the activation MatMuls quantized later. */
    static Set<String> calibrated(Model prepared, LayerMatcher.Result plan, dev.qwtonnx.target.Target target) {
        Set<String> wanted = new LinkedHashSet<>(plan.tensorsToCalibrate());
        if (ActivationMatMulQuantizer.appliesTo(target)) {
            wanted.addAll(ActivationMatMulQuantizer.plan(prepared).tensors());
        }
        return wanted;
    }
}
