package dev.qwtonnx.run;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import java.util.List;

/** The structural checker on a model a run made: topological order, every input defined, unique names, opsets. */
final class CheckStage extends BaseStage {
    private final Fact<Model> model;

    CheckStage(Fact<Model> model) {
        super("check", List.of(model), List.of());
        this.model = model;
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        ModelChecker.check(facts.get(model));
    }
}
