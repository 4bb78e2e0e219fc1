package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.COMPENSATION_PLAN;
import static dev.qwtonnx.run.QuantizeRun.EXPOSED_SHAPES;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_PASS;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_REUSE;
import static dev.qwtonnx.run.QuantizeRun.FLOAT_SESSION;
import static dev.qwtonnx.run.QuantizeRun.HELD_OUT_FLOAT;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.SessionOnDemand;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.FloatPrefix;
import dev.qwtonnx.cwac.FloatReference;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.verify.Fidelity;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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
    record FloatPass(SessionOnDemand session, FloatReference floats) implements AutoCloseable {
        static final FloatPass NONE = new FloatPass(null, null);

        @Override
        public void close() {
            try (SessionOnDemand s = session) {
                if (floats != null) {
                    floats.close();
                }
            }
        }
    }

    /**
     * Most bytes of the float model's outputs on the held-out samples that the pass runs for the fidelity pass and
     * holds until it (through compensation): 8 MB, an encoder's hidden states (BGE zh's 13 sentences of up to 128
     * tokens: 3.4 MB). Beyond it the fidelity pass makes a float session of its own, as it does where a report times
     * its runs: on the OCR CNNs the runs in this session, which exposes every activation the pass reads, cost what a
     * session of their own saves, and a recognizer's held character scores (27 MB) would raise its peak (decision
     * 0020).
     */
    static final long HELD_OUT_BYTES = 8L << 20;

    /** Whether the pass also runs the held-out samples for an untimed fidelity pass ({@link #HELD_OUT_BYTES}). */
    private final boolean heldOut;

    /**
     * The stage; with {@code heldOut} (a run whose fidelity pass is untimed, {@link QuantizeRun#untimedFidelity}),
     * the float session also gives the float model's outputs on the held-out samples, where the run made before
     * this one (with other ranges) did not.
     */
    CalibrateStage(QuantizeRun.Options options, boolean heldOut) {
        super(NAME, options, heldOut
                ? List.of(PREPARED, FLOAT_SESSION, AFFORDABLE, COMPENSATION_PLAN, EXPOSED_SHAPES, FLOAT_REUSE)
                : List.of(PREPARED, FLOAT_SESSION, AFFORDABLE, COMPENSATION_PLAN, EXPOSED_SHAPES),
                List.of(RANGES, FLOAT_PASS, HELD_OUT_FLOAT));
        this.heldOut = heldOut;
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
        if (!session.present() || nothingToQuantize) {
            facts.put(RANGES, Map.of());
            facts.put(FLOAT_PASS, FloatPass.NONE);
            facts.put(HELD_OUT_FLOAT, Optional.empty());
            return;
        }
        PlanCompensationStage.Plan comp = facts.get(COMPENSATION_PLAN);
        FloatPrefix prefix = comp.prefix();
        SessionOnDemand floatSession = narrowed(session, comp, facts.get(EXPOSED_SHAPES),
                runsAlone(facts.get(EXPOSED_SHAPES)), ctx);
        FloatPass pass;
        try {
            pass = new FloatPass(floatSession, FloatReference.on(floatSession, comp.reference(),
                    options.cwac().keepBytes(prepared)));
        } catch (RuntimeException | Error e) {
            floatSession.close();
            throw e;
        }
        try {
            if (prefix != null) {
                prefix.attach(floatSession);
            }
            CalibOptions co = options.calib().withBatch(batch(options.calib(), facts.get(EXPOSED_SHAPES)));
            facts.put(RANGES, calibrate(floatSession.get(), prepared, session, co, comp, pass.floats(), ctx));
            // An untimed fidelity pass reads the float model's outputs on the held-out samples from this session,
            // open now, rather than making a float session of its own: the same model (the session exposes more,
            // which changes no value), run sample by sample as that pass would.
            Fidelity.FloatRuns runs = heldOut && facts.get(FLOAT_REUSE).known() == null
                    ? Fidelity.floatRuns(floatSession.get(), prepared, ctx.measured(), HELD_OUT_BYTES) : null;
            facts.put(HELD_OUT_FLOAT, Optional.ofNullable(runs));
            // Compensation fits on the first samples, whose float activations (and float prefix boundary) the pass
            // kept within the memory budget: where it kept every one it was offered, compensation does not run the
            // float session, which is closed now, its weights and the pass's peak in its arena handed back before
            // the quantized model's sessions are made (decision 0022).
            // A batch asked for that is not kept makes it again.
            if (pass.floats().keptAllOffered() && (prefix == null || prefix.keptAllOffered())) {
                ctx.log().accept("float session closed after the pass: compensation's float activations are kept");
                floatSession.release();
            }
            facts.put(FLOAT_PASS, pass);
        } catch (RuntimeException | Error e) {
            pass.close();
            throw e;
        }
    }

    /**
     * Samples joined in one run of the calibration pass and of compensation's measuring (the same, so that the
     * float outputs the pass keeps are found by batch): the option's batch, fewer where the first sample's
     * activations ({@code shapes}: every tensor the float session exposes) would make a run hold more than
     * {@link Batches#MAX_RUN_BYTES}.
     */
    static int batch(CalibOptions co, Map<String, long[]> shapes) {
        return Batches.withinRunBytes(co.batch(), floatBytes(shapes, t -> true));
    }

    /** Whether the pass and compensation's measuring run one sample at a time ({@link Batches#runsAlone}). */
    static boolean runsAlone(Map<String, long[]> shapes) {
        return Batches.runsAlone(floatBytes(shapes, t -> true));
    }

    /** Bytes of the float tensors of {@code shapes} (the first sample's) that {@code counted} takes. */
    private static long floatBytes(Map<String, long[]> shapes, Predicate<String> counted) {
        long bytes = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            if (counted.test(e.getKey())) {
                bytes += 4 * HostTensor.numel(e.getValue());
            }
        }
        return bytes;
    }

    /**
     * Outputs of the float session beyond what the pass and compensation fetch, from which on (bytes per run of
     * the first calibration sample) the session is made again without them: 64 MB, below which a second session
     * costs more time than the memory is worth. The system property {@code qwt.narrowFloatSessionFrom} (bytes)
     * overrides it, for tests.
     */
    static long narrowFrom() {
        return Long.getLong("qwt.narrowFloatSessionFrom", 64L << 20);
    }

    /**
     * The float session for the pass and for compensation. The session exposes every tensor any plan could fetch,
     * and ORT holds each output of a run until the run ends, whether it is fetched or not (it cannot reuse its
     * memory for later nodes), and keeps the peak in its arena for the session's life: on a segmentation CNN at
     * 1024² that was most of 15 GB. Where what the plan does not fetch holds {@link #narrowFrom} or more, the
     * session is made (again, where int8-cost made it) exposing only what the pass and compensation fetch: the
     * reductions, the values of the ranges reduced outside the session, compensation's float outputs and the
     * prefix's boundary. The same nodes compute the same values (the reductions read every calibrated tensor
     * either way), so the ranges and the written model do not change.
     */
    private static SessionOnDemand narrowed(FloatSessionStage.FloatSession session, PlanCompensationStage.Plan comp,
            Map<String, long[]> shapes, boolean oneRunAtATime, RunContext ctx) {
        Set<String> needed = new LinkedHashSet<>(session.reduced().fetched());
        session.methods().forEach((t, m) -> {
            if (!CalibOptions.reducedInGraph(m)) {
                needed.add(t);
            }
        });
        needed.addAll(comp.reference());
        if (comp.prefix() != null) {
            needed.addAll(comp.prefix().boundary());
        }
        // shapes holds every tensor the session exposes (int8-cost's run of the first sample, in this run or the one
        // made before it with min/max ranges).
        long unused = floatBytes(shapes, t -> !needed.contains(t));
        if (unused < narrowFrom() || unused == 0) {
            return new SessionOnDemand(session.handOver(), session.reduced().model(), session.exposed(), oneRunAtATime);
        }
        ctx.log().accept(String.format("float session made %swith %d of its %d outputs: %.0f MB per run the plan "
                + "does not fetch", session.made() ? "again " : "", needed.size(), session.exposed().size(),
                unused / 1e6));
        if (session.made()) {
            session.handOver().close();
        }
        return new SessionOnDemand(OrtRunner.forPasses(session.reduced().model(), needed), session.reduced().model(),
                needed, oneRunAtATime);
    }

    /**
     * Ranges of the calibrated tensors (each by its method of {@code session}, reduced in the graph where the
     * session does so), from one pass of the float session over the calibration samples that also hands over what
     * compensation keeps ({@code comp}): the float activations of its reference, into {@code floats} (per batch,
     * for the first CWAC samples, batched among themselves), and the boundary of its float prefix (per sample).
     */
    private Map<String, Range> calibrate(OrtRunner floatRunner, Model prepared, FloatSessionStage.FloatSession session,
            CalibOptions co, PlanCompensationStage.Plan comp, FloatReference floats, RunContext ctx) {
        Map<String, RangeMethod> methods = session.methods();
        List<String> reference = comp.reference();
        FloatPrefix prefix = comp.prefix();
        int samples = options.cwac().samples();
        CalibrationSource calib = ctx.calibration();
        int flushAt = reference.isEmpty() || samples == 0 || samples >= calib.size() ? 0 : samples;
        Predicate<Batches.Batch> keepsReference = b -> !reference.isEmpty()
                && (flushAt == 0 || b.ordinals().get(0) < flushAt);
        RangeCalibrator.Pass observed = RangeCalibrator.Pass.of(methods.keySet()).reducedAs(session.reduced().outputs())
                .handingOver(flushAt, b -> {
                    List<String> extra = new ArrayList<>();
                    if (keepsReference.test(b)) {
                        extra.addAll(reference);
                    }
                    if (prefix != null && prefix.wants(b.ordinals().get(0))) {
                        extra.addAll(prefix.boundary());
                    }
                    return extra;
                }, (b, out) -> {
                    if (keepsReference.test(b)) {
                        floats.offer(b, out);
                    }
                    if (prefix != null) {
                        prefix.offer(b, out);
                    }
                });
        return new RangeCalibrator(t -> co.observer(methods.get(t)), co.batch()).calibrate(floatRunner, prepared,
                observed, calib, ctx.progress());
    }
}
