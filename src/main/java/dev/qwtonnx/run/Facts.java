package dev.qwtonnx.run;

import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Objects;

/** What the stages of one run have produced so far; each fact is written once. */
public final class Facts {
    private final Map<Fact<?>, Object> values = new IdentityHashMap<>();

    public boolean has(Fact<?> f) {
        return values.containsKey(f);
    }

    @SuppressWarnings("unchecked")
    public <T> T get(Fact<T> f) {
        if (!values.containsKey(f)) {
            throw new IllegalStateException("no stage has produced '" + f + "'");
        }
        return (T) values.get(f);
    }

    public <T> Facts put(Fact<T> f, T value) {
        if (values.containsKey(f)) {
            throw new IllegalStateException("'" + f + "' is produced twice");
        }
        values.put(f, Objects.requireNonNull(value, f.name()));
        return this;
    }

    /** Forgets a fact no later stage reads (the runner closes it first if it holds resources). */
    Object remove(Fact<?> f) {
        return values.remove(f);
    }
}
