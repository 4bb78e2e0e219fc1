package dev.qwtonnx.calib.data;

import dev.qwtonnx.model.HostTensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One model run's inputs, by model input name (an unmodifiable copy, in the given order);
 * {@code id} names where it came from (a file, a folder, or a generated label).
 */
public record Sample(String id, Map<String, HostTensor> inputs) {
    public Sample {
        Objects.requireNonNull(id, "id");
        inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
    }
}
