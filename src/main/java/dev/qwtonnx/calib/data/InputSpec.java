package dev.qwtonnx.calib.data;

import dev.qwtonnx.model.DataType;
import java.util.Arrays;

/** A model input a calibration sample must provide: name, element type, shape (-1 where dynamic). */
public record InputSpec(String name, DataType type, long[] shape) {
    public InputSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public String toString() {
        return name + " " + type + Arrays.toString(shape);
    }
}
