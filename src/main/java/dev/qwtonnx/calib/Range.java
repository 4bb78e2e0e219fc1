package dev.qwtonnx.calib;

/** The observed (or chosen) value range of one tensor. */
public record Range(float min, float max) {
    public Range {
        if (Float.isNaN(min) || Float.isNaN(max)) {
            throw new IllegalArgumentException("NaN range");
        }
    }

    public Range union(Range o) {
        return new Range(Math.min(min, o.min), Math.max(max, o.max));
    }
}
