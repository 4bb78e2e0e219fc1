package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.Fidelity;
import java.util.List;

/**
 * A quantized model's output fidelity to its float model on the held-out samples (the calibration
 * samples when none are held out), measured once for the summary and the report.
 */
final class FidelityStage extends BaseStage {
    private final Fact<Model> floatModel;
    private final Fact<Model> quantModel;
    private final Fact<List<Fidelity.OutputFidelity>> fidelity;

    FidelityStage(String name, Fact<Model> floatModel, Fact<Model> quantModel, Fact<List<Fidelity.OutputFidelity>> fidelity) {
        super(name, List.of(floatModel, quantModel), List.of(fidelity));
        this.floatModel = floatModel;
        this.quantModel = quantModel;
        this.fidelity = fidelity;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        facts.put(fidelity, Fidelity.measure(facts.get(floatModel), facts.get(quantModel), ctx.measured(),
                ctx.progress()));
    }
}
