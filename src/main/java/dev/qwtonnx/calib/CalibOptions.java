package dev.qwtonnx.calib;

import dev.qwtonnx.QwtException;
import java.util.Objects;

/**
 * How activation ranges are calibrated.
 *
 * @param method     the range method of every tensor the overrides do not name
 * @param percentile for {@link RangeMethod#PERCENTILE}: the share of values kept, in (0, 100]
 * @param bins       histogram capacity per tensor (memory is O(tensors × bins))
 * @param overrides  per-tensor or per-consumer-op choices of method
 * @param batch      samples of equal shape joined into one ORT run, at most (1 = no batching)
 * @param clipWherePoor with {@link RangeMethod#MINMAX}: where the written model's held-out fidelity is poor, the
 *                   run is made again with {@link RangeMethod#PERCENTILE} ranges and the better of the two kept
 *                   (decision 0001); a run that measures no held-out fidelity (the API's) keeps min/max
 */
public record CalibOptions(RangeMethod method, double percentile, int bins, RangeOverrides overrides, int batch,
        boolean clipWherePoor) {
    public CalibOptions {
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(overrides, "overrides");
        if (!(percentile > 0 && percentile <= 100)) {
            throw new QwtException("percentile must be in (0, 100], got " + percentile);
        }
        if (batch < 1 || batch > 4096) {
            throw new QwtException("calibration batch must be in [1, 4096], got " + batch);
        }
        if (bins < 128 || bins > (1 << 20)) {
            throw new QwtException("histogram bins must be in [128, 1048576], got " + bins);
        }
    }

    public static CalibOptions defaults() {
        return new CalibOptions(RangeMethod.MINMAX, 99.99, Histogram.DEFAULT_CAPACITY, RangeOverrides.NONE, 8, true);
    }

    public CalibOptions withMethod(RangeMethod m) {
        return new CalibOptions(m, percentile, bins, overrides, batch, clipWherePoor);
    }

    public CalibOptions withPercentile(double p) {
        return new CalibOptions(method, p, bins, overrides, batch, clipWherePoor);
    }

    public CalibOptions withOverrides(RangeOverrides o) {
        return new CalibOptions(method, percentile, bins, o, batch, clipWherePoor);
    }

    public CalibOptions withBatch(int b) {
        return new CalibOptions(method, percentile, bins, overrides, b, clipWherePoor);
    }

    /** Whether a poor run is made again with percentile ranges (min/max asked, and {@link #clipWherePoor}). */
    public boolean retriesWherePoor() {
        return clipWherePoor && method == RangeMethod.MINMAX;
    }

    /**
     * A fresh observer for a tensor calibrated with {@code m}: MinMax needs no histogram, a percentile only
     * the tails ({@link TailObserver}); entropy and MSE weigh every bin.
     */
    public RangeObserver observer(RangeMethod m) {
        return switch (m) {
            case MINMAX -> new MinMaxObserver();
            case PERCENTILE -> new TailObserver(percentile);
            default -> new HistogramObserver(m, percentile, bins);
        };
    }

    /** Whether tensors of method {@code m} are reduced inside the calibration session (min/max, percentile). */
    public static boolean reducedInGraph(RangeMethod m) {
        return m == RangeMethod.MINMAX || m == RangeMethod.PERCENTILE;
    }

    @Override
    public String toString() {
        return "calibrate=" + method.label() + (method == RangeMethod.PERCENTILE ? "@" + percentile : "")
                + (overrides.isEmpty() ? "" : " overrides=" + overrides);
    }
}
