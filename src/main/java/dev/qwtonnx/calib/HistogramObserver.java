package dev.qwtonnx.calib;

/** A range observer that keeps a {@link Histogram} and chooses the range with a histogram method. */
public final class HistogramObserver implements RangeObserver {
    private final RangeMethod method;
    private final double percentile;
    private final Histogram histogram;

    public HistogramObserver(RangeMethod method, double percentile, int bins) {
        this.method = method;
        this.percentile = percentile;
        this.histogram = new Histogram(bins);
    }

    @Override
    public void observe(float[] values) {
        histogram.observe(values);
    }

    public Histogram histogram() {
        return histogram;
    }

    @Override
    public Range range() {
        return histogram.total() == 0 ? null : HistogramRanges.choose(histogram, method, percentile);
    }
}
