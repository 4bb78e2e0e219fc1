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
    private final Tail top = new Tail();
    private final Tail bottom = new Tail();

    /** Keeps {@code percentile} % of the values, clipping (100 − p)/2 % on each side. */
    public TailObserver(double percentile) {
        this.cut = cut(percentile);
    }

    /** The share of the values clipped on each side when {@code percentile} % are kept, in (0, 100]. */
    public static double cut(double percentile) {
        if (!(percentile > 0 && percentile <= 100)) {
            throw new IllegalArgumentException("percentile must be in (0, 100], got " + percentile);
        }
        return (100 - percentile) / 200;
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
        top.addFinite(largest);
        bottom.addFinite(smallest);
    }

    /**
     * [the value with floor(cut · count) values below it, the one with as many above it], of the values
     * handed over.
     */
    @Override
    public Range range() {
        if (top.size == 0 || bottom.size == 0) {
            return null;
        }
        float[] t = top.sorted();
        float[] b = bottom.sorted();
        long r = (long) Math.floor(cut * count);
        float hi = t[(int) Math.max(0, t.length - 1 - Math.min(r, t.length - 1))];
        float lo = b[(int) Math.min(r, b.length - 1)];
        return new Range(Math.min(lo, hi), Math.max(lo, hi));
    }

    /** The finite values one side's observations handed over. */
    private static final class Tail {
        private float[] values = new float[16];
        private int size;

        void addFinite(float[] more) {
            for (float v : more) {
                if (Float.isFinite(v)) {
                    if (size == values.length) {
                        values = Arrays.copyOf(values, 2 * size);
                    }
                    values[size++] = v;
                }
            }
        }

        float[] sorted() {
            float[] s = Arrays.copyOf(values, size);
            Arrays.sort(s);
            return s;
        }
    }
}
