package dev.qwtonnx.calib.data;

import dev.qwtonnx.model.DataType;
import java.util.Arrays;
import java.util.Objects;

/**
 * A model input a calibration sample must provide: name, element type and shape, with -1 for a
 * dynamic or symbolic dimension. {@code shape} is null when the model declares no shape at all (any
 * rank is accepted).
 */
public record InputSpec(String name, DataType type, long[] shape) {
    public InputSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        shape = shape == null ? null : shape.clone();
    }

    @Override
    public long[] shape() {
        return shape == null ? null : shape.clone();
    }

    /** False when the model declares no shape, so any rank fits. */
    public boolean rankKnown() {
        return shape != null;
    }

    /** The shape as the model states it, with '?' for dynamic dimensions, e.g. [1, ?, 768]. */
    public String shapeText() {
        if (shape == null) {
            return "(any shape)";
        }
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            b.append(i == 0 ? "" : ", ").append(shape[i] < 0 ? "?" : Long.toString(shape[i]));
        }
        return b.append(']').toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof InputSpec s && s.name.equals(name) && s.type == type && Arrays.equals(s.shape, shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, type, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + type + shapeText();
    }
}
