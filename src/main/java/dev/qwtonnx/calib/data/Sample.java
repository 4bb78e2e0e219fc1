package dev.qwtonnx.calib.data;

import dev.qwtonnx.model.HostTensor;
import java.util.Map;

/** One model run's inputs, by model input name; {@code id} names where it came from (file, index). */
public record Sample(String id, Map<String, HostTensor> inputs) {
}
