package dev.qwtonnx.calib;

/**
 * Chooses a quantization range from a {@link Histogram}. Every method returns a range within the
 * observed [min, max]; the uint8 grid later widens it to include 0.
 */
public final class HistogramRanges {
    /** TensorRT's KL search works on at most this many magnitude bins. */
    static final int ENTROPY_BINS = 2048;
    /** Candidate clipping points per side for the MSE search. */
    static final int MSE_STEPS = 256;
    private static final int UINT8_STEPS = 255;

    private HistogramRanges() {
    }

    public static Range choose(Histogram h, RangeMethod method, double percentile) {
        if (h.total() == 0) {
            throw new IllegalArgumentException("empty histogram");
        }
        return switch (method) {
            case MINMAX -> minMax(h);
            case PERCENTILE -> percentile(h, percentile);
            case ENTROPY -> entropy(h);
            case MSE -> mse(h);
        };
    }

    public static Range minMax(Histogram h) {
        return new Range((float) h.min(), (float) h.max());
    }

    /** Clips (100 - p)/2 % of the values on each side, interpolating linearly within a bin. */
    public static Range percentile(Histogram h, double p) {
        if (!(p > 0 && p <= 100)) {
            throw new IllegalArgumentException("percentile must be in (0, 100], got " + p);
        }
        double cut = (100 - p) / 200;
        return new Range((float) quantile(h, cut), (float) quantile(h, 1 - cut));
    }

    /** The value below which a fraction {@code q} of the observed values lie. */
    static double quantile(Histogram h, double q) {
        double target = q * h.total();
        double below = 0;
        for (int b = 0; b < h.bins(); b++) {
            long c = h.count(b);
            if (c > 0 && below + c >= target) {
                double f = Math.max(0, (target - below) / c);
                return h.lower(b) + f * (h.upper(b) - h.lower(b));
            }
            below += c;
        }
        return h.max();
    }

    /**
     * TensorRT's entropy calibration on the magnitudes |x|: for each candidate threshold T, the
     * distribution clipped at T (outliers counted in the last bin) is compared, by KL divergence,
     * with its image on the quantized grid; the T with the least divergence wins. TensorRT's int8
     * grid has 128 levels over [0, T]; the uint8 grid here spans [max(min, -T), min(max, T)] with
     * 255 steps, so the levels over [0, T] are 255·T / that span: 128 for a symmetric tensor, 255
     * for a one-signed one, and in between for a tensor that is mostly of one sign (after GELU or
     * HardSwish), which a fixed 128 would clip too hard.
     */
    public static Range entropy(Histogram h) {
        Histogram.Magnitudes m = h.magnitudes(ENTROPY_BINS);
        long[] hist = m.counts();
        int n = hist.length;
        final int first = 128;
        if (n <= first) {
            return minMax(h);
        }
        long[] above = new long[n + 1];
        for (int k = n - 1; k >= 0; k--) {
            above[k] = above[k + 1] + hist[k];
        }
        double bestKl = Double.POSITIVE_INFINITY;
        int best = n;
        double[] p = new double[n];
        double[] q = new double[n];
        for (int i = first; i <= n; i++) {
            double t = i * m.width();
            double span = Math.min(h.max(), t) - Math.max(h.min(), -t);
            int levels = (int) Math.min(i, Math.max(2, Math.round(UINT8_STEPS * t / Math.max(span, t))));
            for (int k = 0; k < i; k++) {
                p[k] = hist[k];
            }
            p[i - 1] += above[i];
            java.util.Arrays.fill(q, 0, i, 0);
            for (int j = 0; j < levels; j++) {
                int start = (int) ((long) j * i / levels);
                int end = (int) ((long) (j + 1) * i / levels);
                double sum = 0;
                int nonzero = 0;
                for (int k = start; k < end; k++) {
                    sum += hist[k];
                    nonzero += p[k] != 0 ? 1 : 0;
                }
                if (nonzero > 0) {
                    for (int k = start; k < end; k++) {
                        q[k] = p[k] != 0 ? sum / nonzero : 0;
                    }
                }
            }
            double kl = klDivergence(p, q, i);
            if (kl < bestKl) {
                bestKl = kl;
                best = i;
            }
        }
        double t = best * m.width();
        return new Range((float) Math.max(h.min(), -t), (float) Math.min(h.max(), t));
    }

    /**
     * KL(P || Q) over the first {@code n} entries after normalising both and smoothing zeros with
     * a small epsilon (as ONNX Runtime's calibrator does), so that an empty quantized bin facing a
     * non-empty reference bin gives a large but finite divergence.
     */
    static double klDivergence(double[] p, double[] q, int n) {
        double[] ps = smooth(p, n);
        double[] qs = smooth(q, n);
        if (ps == null || qs == null) {
            return Double.POSITIVE_INFINITY;
        }
        double kl = 0;
        for (int k = 0; k < n; k++) {
            if (ps[k] > 0) {
                kl += ps[k] * Math.log(ps[k] / qs[k]);
            }
        }
        return kl;
    }

    private static double[] smooth(double[] v, int n) {
        final double eps = 1e-4;
        double sum = 0;
        int zeros = 0;
        for (int k = 0; k < n; k++) {
            sum += v[k];
            zeros += v[k] == 0 ? 1 : 0;
        }
        int nonzeros = n - zeros;
        if (nonzeros == 0 || sum <= 0) {
            return null;
        }
        double take = eps * zeros / nonzeros;
        double[] out = new double[n];
        for (int k = 0; k < n; k++) {
            out[k] = v[k] == 0 ? eps : Math.max(v[k] / sum - take, eps * eps);
        }
        return out;
    }

    /**
     * The range [lo, hi] minimising the expected squared error of uint8 quantization over the
     * observed distribution: values outside the range cost their squared distance to it, values
     * inside cost the rounding noise step²/12. Searched by coordinate descent over a grid of
     * {@link #MSE_STEPS} clipping points per side, starting from [min, max].
     */
    public static Range mse(Histogram h) {
        int n = h.bins();
        double[] x = new double[n];
        double[] c = new double[n];
        for (int b = 0; b < n; b++) {
            x[b] = (h.lower(b) + h.upper(b)) / 2;
            c[b] = h.count(b);
        }
        double min = h.min();
        double max = h.max();
        double lo = min;
        double hi = max;
        double err = quantizationError(x, c, lo, hi);
        for (int round = 0; round < 4; round++) {
            double before = err;
            if (max > 0) {
                for (int k = 1; k <= MSE_STEPS; k++) {
                    double cand = max * k / MSE_STEPS;
                    double e = quantizationError(x, c, lo, cand);
                    if (e < err) {
                        err = e;
                        hi = cand;
                    }
                }
            }
            if (min < 0) {
                for (int k = 1; k <= MSE_STEPS; k++) {
                    double cand = min * k / MSE_STEPS;
                    double e = quantizationError(x, c, cand, hi);
                    if (e < err) {
                        err = e;
                        lo = cand;
                    }
                }
            }
            if (!(err < before)) {
                break;
            }
        }
        return new Range((float) lo, (float) hi);
    }

    /** The expected total squared error of quantizing the weighted points to uint8 over [lo, hi] ∪ {0}. */
    static double quantizationError(double[] x, double[] c, double lo, double hi) {
        double a = Math.min(lo, 0);
        double b = Math.max(hi, 0);
        double step = (b - a) / UINT8_STEPS;
        double noise = step * step / 12;
        double err = 0;
        for (int k = 0; k < x.length; k++) {
            if (c[k] == 0) {
                continue;
            }
            double v = x[k];
            double d = v < a ? (a - v) * (a - v) : v > b ? (v - b) * (v - b) : noise;
            err += c[k] * d;
        }
        return err;
    }
}
