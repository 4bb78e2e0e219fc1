package dev.qwtonnx.calib.data;

// TEMPORARY placeholder so the lead can compile; the data-reader engineer replaces this file.
public record InputSpec(String name, dev.qwtonnx.model.DataType type, long[] shape) {
}
