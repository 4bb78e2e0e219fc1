package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.LatencyMeter;
import java.util.List;
import java.util.Optional;

/**
 * A quantized model's output fidelity to its float model on the held-out samples (the calibration
 * samples when none are held out), measured once for the summary and the report, the same runs timed
 * for the report's latency (see {@link Fidelity#measureTimed}).
 */
final class FidelityStage extends BaseStage {
    private final Fact<Model> floatModel;
    private final Fact<Model> quantModel;
    private final Fact<List<Fidelity.OutputFidelity>> fidelity;
    private final Fact<Optional<LatencyMeter.Result>> latency;
    private final Fact<Destination> destination;

    /** Timed, with the destination's extra runs on the first sample (0: the pass's own runs). */
    FidelityStage(String name, Fact<Model> floatModel, Fact<Model> quantModel, Fact<List<Fidelity.OutputFidelity>> fidelity,
            Fact<Optional<LatencyMeter.Result>> latency, Fact<Destination> destination) {
        super(name, List.of(floatModel, quantModel, destination), List.of(fidelity, latency));
        this.floatModel = floatModel;
        this.quantModel = quantModel;
        this.fidelity = fidelity;
        this.latency = latency;
        this.destination = destination;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Fidelity.Timed t = Fidelity.measureTimed(facts.get(floatModel), facts.get(quantModel), ctx.measured(),
                facts.get(destination).runs(), ctx.progress());
        facts.put(fidelity, t.outputs());
        facts.put(latency, Optional.ofNullable(t.latency()));
    }
}
