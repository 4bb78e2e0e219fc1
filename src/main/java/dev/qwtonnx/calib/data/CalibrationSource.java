package dev.qwtonnx.calib.data;

/**
 * A finite, re-iterable sequence of samples; each is one ORT run (it may itself hold a batch).
 * Closing frees what the source holds outside the heap (a native tokenizer); most hold nothing.
 */
public interface CalibrationSource extends Iterable<Sample>, AutoCloseable {
    int size();

    @Override
    default void close() {
    }
}
