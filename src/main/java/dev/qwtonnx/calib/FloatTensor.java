package dev.qwtonnx.calib;

/** A float tensor read back from an ORT run: row-major values and shape. */
public record FloatTensor(float[] data, long[] shape) {
    /** Bytes of its values. */
    public long bytes() {
        return 4L * data.length;
    }

    /** Bytes of the values of a run's outputs. */
    public static long bytes(java.util.Map<String, FloatTensor> outputs) {
        long bytes = 0;
        for (FloatTensor t : outputs.values()) {
            bytes += t.bytes();
        }
        return bytes;
    }

    /** The number of elements after {@code axis} (the stride of that axis). */
    public long inner(int axis) {
        long n = 1;
        for (int i = axis + 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }
}
