package dev.qwtonnx.calib;

import java.util.Arrays;

/**
 * Percentile ranges from the tails alone: each observation hands over a tensor's largest and smallest
 * values, a few more than its share of what the percentile clips ({@link #tail}), and how many values it
 * had; the range's ends are order statistics of what was handed over. A histogram of every value gives
 * the same cut but needs the whole activation copied out of ORT on every run (the detector's
 * calibration took 40 % longer and 2.5 times the memory); TopK in the session hands over a few hundred
 * values instead ({@link InGraphTails}).
 *
 * <p>Each observation hands over twice its share plus one, so the ends are the exact percentile of
 * all the values seen unless one observation holds more than twice its share of a clipped tail; then
 * that tail is cut a little further in. The result does not depend on the order of observations.
 * Memory: about {@code 2 · (100 − p) / 100} of the values observed.
 */
public final class TailObserver implements RangeObserver {
    /** Share of the values clipped on each side: (100 − p) / 200. */
    private final double cut;
    private long count;
    private float[] top = new float[16];
    private int tops;
    private float[] bottom = new float[16];
    private int bottoms;

    /** Keeps {@code percentile} % of the values, clipping (100 − p)/2 % on each side. */
    public TailObserver(double percentile) {
        if (!(percentile > 0 && percentile <= 100)) {
            throw new IllegalArgumentException("percentile must be in (0, 100], got " + percentile);
        }
        this.cut = (100 - percentile) / 200;
    }

    /** Share of the values clipped on each side. */
    public double cut() {
        return cut;
    }

    /** How many of its largest (and of its smallest) values an observation of {@code n} values hands over. */
    public static long tail(long n, double cut) {
        return Math.min(n, 2 * (long) Math.ceil(cut * n) + 1);
    }

    /**
     * A whole tensor's values, where they were copied out rather than reduced in the session (Loop and Scan
     * bodies): its tails are selected in linear time, not by sorting every value.
     */
    @Override
    public void observe(float[] values) {
        float[] finite = new float[values.length];
        int n = 0;
        for (float v : values) {
            if (Float.isFinite(v)) {
                finite[n++] = v;
            }
        }
        int m = (int) Math.min(tail(values.length, cut), n);
        if (2 * m >= n) {
            Arrays.sort(finite, 0, n); // the tails overlap: a few values
        } else if (m > 0) {
            select(finite, 0, n - 1, n - m); // the m largest from n - m on
            select(finite, 0, n - m - 1, m - 1); // the m smallest, of the others, before m
        }
        observeTails(Arrays.copyOfRange(finite, n - m, n), Arrays.copyOfRange(finite, 0, m), values.length);
    }

    /**
     * Reorders {@code a[lo..hi]} so that {@code a[k]} is the value a sort would put there, the smaller ones before
     * it and the larger ones after it (Hoare's selection; the middle of three as pivot).
     */
    static void select(float[] a, int lo, int hi, int k) {
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            float pivot = Math.max(Math.min(a[lo], a[mid]), Math.min(Math.max(a[lo], a[mid]), a[hi]));
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] < pivot) {
                    i++;
                }
                while (a[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    float t = a[i];
                    a[i++] = a[j];
                    a[j--] = t;
                }
            }
            if (k <= j) {
                hi = j;
            } else if (k >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    /** One observation of {@code n} values, its largest values {@code largest} and smallest {@code smallest}. */
    public void observeTails(float[] largest, float[] smallest, long n) {
        count += n;
        for (float v : largest) {
            if (Float.isFinite(v)) {
                if (tops == top.length) {
                    top = Arrays.copyOf(top, 2 * tops);
                }
                top[tops++] = v;
            }
        }
        for (float v : smallest) {
            if (Float.isFinite(v)) {
                if (bottoms == bottom.length) {
                    bottom = Arrays.copyOf(bottom, 2 * bottoms);
                }
                bottom[bottoms++] = v;
            }
        }
    }

    /**
     * [the value with floor(cut · count) values below it, the one with as many above it], of the values
     * handed over.
     */
    @Override
    public Range range() {
        if (tops == 0 || bottoms == 0) {
            return null;
        }
        float[] t = Arrays.copyOf(top, tops);
        float[] b = Arrays.copyOf(bottom, bottoms);
        Arrays.sort(t);
        Arrays.sort(b);
        long r = (long) Math.floor(cut * count);
        float hi = t[(int) Math.max(0, tops - 1 - Math.min(r, tops - 1))];
        float lo = b[(int) Math.min(r, bottoms - 1)];
        return new Range(Math.min(lo, hi), Math.max(lo, hi));
    }
}
