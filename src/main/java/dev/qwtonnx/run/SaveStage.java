package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import java.util.List;

/** Writes the output atomically, large weights as external data as the destination asks; I/O only. */
final class SaveStage extends BaseStage {
    private final Fact<Model> model;
    private final Fact<Destination> destination;

    SaveStage(Fact<Model> model, Fact<Destination> destination) {
        super("save", List.of(model, destination), List.of());
        this.model = model;
        this.destination = destination;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Destination d = facts.get(destination);
        ModelIO.save(facts.get(model), d.output(), d.input(), d.externalData());
    }
}
