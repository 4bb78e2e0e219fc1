package dev.qwtonnx.run;

import java.util.List;

/** A stage's name and declared facts, so each stage's class holds only its work. */
abstract class BaseStage implements Stage {
    private final String name;
    private final List<Fact<?>> consumes;
    private final List<Fact<?>> produces;

    BaseStage(String name, List<Fact<?>> consumes, List<Fact<?>> produces) {
        this.name = name;
        this.consumes = List.copyOf(consumes);
        this.produces = List.copyOf(produces);
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final List<Fact<?>> consumes() {
        return consumes;
    }

    @Override
    public final List<Fact<?>> produces() {
        return produces;
    }

    @Override
    public String toString() {
        return name;
    }
}
