package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION_PLAN;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_PASS;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_SESSION;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.FloatPrefix;
import dev.qwtonnx.cwac.FloatReference;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Activation ranges from one pass of the float session ({@link FloatSessionStage}) over the
 * calibration set. The same pass hands compensation what its plan asks for: the float layer outputs
 * of the first samples, and the float prefix's outputs per sample. The session stays open for
 * compensation's measuring.
 */
final class CalibrateStage extends QuantizeStage {
    static final String NAME = "calibrate";

    /** The float session and the float layer outputs kept from its pass; closed after the last stage that reads them. */
    record FloatPass(OrtRunner runner, FloatReference floats) implements AutoCloseable {
        static final FloatPass NONE = new FloatPass(null, null);

        @Override
        public void close() {
            try (OrtRunner r = runner) {
                if (floats != null) {
                    floats.close();
                }
            }
        }
    }

    CalibrateStage(QuantizeRun.Options options) {
        super(NAME, options, List.of(PREPARED, FLOAT_SESSION, AFFORDABLE, COMPENSATION_PLAN), List.of(RANGES, FLOAT_PASS));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        FloatSessionStage.FloatSession session = facts.get(FLOAT_SESSION);
        // Nothing will be quantized (the cost model left every layer in float, and no activation MatMul is
        // planned): no range is read, so the pass is not made. An accuracy target's search reads the ranges of
        // every matched layer.
        LayerMatcher.Result affordable = facts.get(AFFORDABLE);
        // The activation MatMuls' graph analysis only where no layer is left.
        boolean nothingToQuantize = !options.accuracy().hasTarget() && affordable.tensorsToCalibrate().isEmpty()
                && FloatSessionStage.calibrated(prepared, affordable, options.quant().target()).isEmpty();
        if (session.runner() == null || nothingToQuantize) {
            facts.put(RANGES, Map.of());
            facts.put(FLOAT_PASS, FloatPass.NONE);
            return;
        }
        PlanCompensationStage.Plan comp = facts.get(COMPENSATION_PLAN);
        FloatPrefix prefix = comp.prefix();
        OrtRunner floatRunner = session.handOver();
        FloatPass pass;
        try {
            pass = new FloatPass(floatRunner, FloatReference.on(floatRunner, comp.reference(),
                    options.cwac().keepBytes(prepared)));
        } catch (RuntimeException | Error e) {
            floatRunner.close();
            throw e;
        }
        try {
            if (prefix != null) {
                prefix.attach(floatRunner);
            }
            facts.put(RANGES, calibrate(floatRunner, prepared, session.methods(), session.reduced().outputs(),
                    options.calib(), comp.reference(), pass.floats(), prefix, options.cwac().samples(),
                    ctx.calibration(), ctx));
            facts.put(FLOAT_PASS, pass);
        } catch (RuntimeException | Error e) {
            pass.close();
            throw e;
        }
    }

    /**
     * Ranges of the calibrated tensors, from one pass of the float session that also hands over what
     * compensation keeps: the float activations of its {@code reference} (per batch, for the first
     * {@code samples}, batched among themselves) and the boundary of the float {@code prefix} (per sample).
     */
    private static Map<String, Range> calibrate(OrtRunner floatRunner, Model prepared, Map<String, RangeMethod> methods,
            Map<String, List<String>> reduced, CalibOptions co, List<String> reference, FloatReference floats,
            FloatPrefix prefix, int samples, CalibrationSource calib, RunContext ctx) {
        int flushAt = reference.isEmpty() || samples == 0 || samples >= calib.size() ? 0 : samples;
        Predicate<Batches.Batch> keepsReference = b -> !reference.isEmpty()
                && (flushAt == 0 || b.ordinals().get(0) < flushAt);
        return new RangeCalibrator(t -> co.observer(methods.get(t)), co.batch()).calibrate(floatRunner, prepared,
                methods.keySet(), reduced, flushAt, b -> {
                    List<String> extra = new ArrayList<>();
                    if (keepsReference.test(b)) {
                        extra.addAll(reference);
                    }
                    if (prefix != null && prefix.wants(b.ordinals().get(0))) {
                        extra.addAll(prefix.boundary());
                    }
                    return extra;
                }, calib, ctx.progress(), (b, out) -> {
                    if (keepsReference.test(b)) {
                        floats.offer(b, out);
                    }
                    if (prefix != null) {
                        prefix.offer(b, out);
                    }
                });
    }
}
