package dev.qwtonnx.target;

/**
 * One rule a target's runtime imposes on a quantized model.
 *
 * @param id     stable short name, {@code area} or {@code provider.area} (e.g. {@code xnnpack.u8s8})
 * @param text   the rule in one line
 * @param source where the runtime says so: a file path and function in its source, or a document
 */
public record Rule(String id, String text, String source) {
}
