package dev.qwtonnx.calib;

/** A float tensor read back from an ORT run: row-major values and shape. */
public record FloatTensor(float[] data, long[] shape) {
    /** The number of elements after {@code axis} (the stride of that axis). */
    public long inner(int axis) {
        long n = 1;
        for (int i = axis + 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }
}
