package dev.qwtonnx.calib;

/** The smallest and largest finite values seen. O(1) memory. */
public final class MinMaxObserver implements RangeObserver {
    private float min = Float.POSITIVE_INFINITY;
    private float max = Float.NEGATIVE_INFINITY;

    @Override
    public void observe(float[] values) {
        float lo = min;
        float hi = max;
        for (float v : values) {
            if (v < lo) {
                lo = v;
            }
            if (v > hi) {
                hi = v;
            }
        }
        min = lo;
        max = hi;
    }

    @Override
    public Range range() {
        return min > max ? null : new Range(min, max);
    }
}
