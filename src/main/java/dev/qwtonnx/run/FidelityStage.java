package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.LatencyMeter;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.ToIntFunction;

/**
 * A quantized model's output fidelity to its float model on the held-out samples (the calibration
 * samples when none are held out), measured once for the summary and the report; where a latency
 * fact is asked for, the same runs are timed for the report (see {@link Fidelity#measureTimed}).
 */
final class FidelityStage extends BaseStage {
    private final Fact<Model> floatModel;
    private final Fact<Model> quantModel;
    private final Fact<List<Fidelity.OutputFidelity>> fidelity;
    private final Fact<Optional<LatencyMeter.Result>> latency;
    private final ToIntFunction<Facts> runs;

    FidelityStage(String name, Fact<Model> floatModel, Fact<Model> quantModel, Fact<List<Fidelity.OutputFidelity>> fidelity) {
        this(name, floatModel, quantModel, fidelity, null, List.of(), null);
    }

    /** Also timed: {@code runs} reads the extra runs on the first sample from {@code reads} (0: the pass's own). */
    FidelityStage(String name, Fact<Model> floatModel, Fact<Model> quantModel, Fact<List<Fidelity.OutputFidelity>> fidelity,
            Fact<Optional<LatencyMeter.Result>> latency, List<Fact<?>> reads, ToIntFunction<Facts> runs) {
        super(name, concat(List.of(floatModel, quantModel), reads),
                latency == null ? List.of(fidelity) : List.of(fidelity, latency));
        this.floatModel = floatModel;
        this.quantModel = quantModel;
        this.fidelity = fidelity;
        this.latency = latency;
        this.runs = runs;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        if (latency == null) {
            facts.put(fidelity, Fidelity.measure(facts.get(floatModel), facts.get(quantModel), ctx.measured(),
                    ctx.progress()));
            return;
        }
        Fidelity.Timed t = Fidelity.measureTimed(facts.get(floatModel), facts.get(quantModel), ctx.measured(),
                runs.applyAsInt(facts), ctx.progress());
        facts.put(fidelity, t.outputs());
        facts.put(latency, Optional.ofNullable(t.latency()));
    }

    private static List<Fact<?>> concat(List<Fact<?>> a, List<Fact<?>> b) {
        List<Fact<?>> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
