package dev.qwtonnx.run;

/**
 * The name of one product of a run: a model, a plan, ranges, a session. Exactly one stage produces
 * it; the stages that consume it say so, so the order of a stage list is checked before it runs.
 * Identity is the instance: two facts with one name are still two facts.
 */
public final class Fact<T> {
    private final String name;

    private Fact(String name) {
        this.name = name;
    }

    public static <T> Fact<T> named(String name) {
        return new Fact<>(name);
    }

    public String name() {
        return name;
    }

    @Override
    public String toString() {
        return name;
    }
}
