package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.LatencyMeter;
import java.util.List;
import java.util.Optional;

/**
 * A quantized model's output fidelity to its float model on the held-out samples (the calibration
 * samples when none are held out), measured once for the summary and the report, the same runs timed
 * for the report's latency (see {@link Fidelity#measureTimed}); untimed without a report, the float model's outputs
 * then read from calibration's float session where it ran the held-out samples ({@link CalibrateStage#HELD_OUT_BYTES}).
 */
final class FidelityStage extends BaseStage {
    /**
     * What a pass may reuse and keep of the float model's runs on the held-out samples: {@code known} from the run
     * made before this one with other ranges (null: none), and {@code keepBytes}, the most bytes of float outputs
     * this pass keeps for a run after it (0: none kept).
     */
    record FloatReuse(Fidelity.FloatRuns known, long keepBytes) {
        static final FloatReuse NONE = new FloatReuse(null, 0);
    }

    private final Fact<Model> floatModel;
    private final Fact<Model> quantModel;
    private final Fact<List<Fidelity.OutputFidelity>> fidelity;
    private final Fact<Optional<LatencyMeter.Result>> latency;
    private final Fact<Destination> destination;
    private final Fact<FloatReuse> reuse;
    private final Fact<Optional<Fidelity.FloatRuns>> kept;
    private final Fact<Optional<Fidelity.FloatRuns>> calibrated;

    /**
     * Timed, with the destination's extra runs on the first sample (0: the pass's own runs); the float runs read
     * from and kept for other passes as {@code reuse} says, the kept ones in {@code kept}; where the run made before
     * gave none, those of {@code calibrated} (calibration's float session ran the held-out samples) where present.
     */
    FidelityStage(String name, Fact<Model> floatModel, Fact<Model> quantModel, Fact<List<Fidelity.OutputFidelity>> fidelity,
            Fact<Optional<LatencyMeter.Result>> latency, Fact<Destination> destination, Fact<FloatReuse> reuse,
            Fact<Optional<Fidelity.FloatRuns>> kept, Fact<Optional<Fidelity.FloatRuns>> calibrated) {
        super(name, List.of(floatModel, quantModel, destination, reuse, calibrated), List.of(fidelity, latency, kept));
        this.floatModel = floatModel;
        this.quantModel = quantModel;
        this.fidelity = fidelity;
        this.latency = latency;
        this.destination = destination;
        this.reuse = reuse;
        this.kept = kept;
        this.calibrated = calibrated;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        FloatReuse r = facts.get(reuse);
        Destination d = facts.get(destination);
        Fidelity.FloatRuns fromCalibration = r.known() == null ? facts.get(calibrated).orElse(null) : null;
        Fidelity.FloatRuns known = r.known() != null ? r.known() : fromCalibration;
        // The latency is the report's: without one, nothing is timed.
        Fidelity.Timed t = d.reports().isEmpty()
                ? Fidelity.measureUntimed(facts.get(floatModel), facts.get(quantModel), ctx.measured(), ctx.progress(),
                        known, r.keepBytes())
                : Fidelity.measureTimed(facts.get(floatModel), facts.get(quantModel), ctx.measured(), d.runs(),
                        ctx.progress(), known, r.keepBytes());
        facts.put(fidelity, t.outputs());
        facts.put(latency, Optional.ofNullable(t.latency()));
        // Calibration's runs are this pass's float runs: kept for a run made after it as the pass's own would be.
        Fidelity.FloatRuns keptRuns = t.floatRuns() != null ? t.floatRuns()
                : fromCalibration != null && fromCalibration.bytes() <= r.keepBytes() ? fromCalibration : null;
        facts.put(kept, Optional.ofNullable(keptRuns));
    }
}
