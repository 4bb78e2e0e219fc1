package dev.qwtonnx.calib;

import java.util.Arrays;

/**
 * A streaming histogram of one tensor's finite values whose range grows as data arrives, in
 * O(capacity) memory whatever the number of samples.
 *
 * <p>Bins have width 2^e and are aligned to multiples of it (bin k covers [k·2^e, (k+1)·2^e)).
 * The exponent e is a function of the exact minimum and maximum seen so far only: the smallest
 * power of two at which [min, max] fits in {@code capacity} bins (never finer than 2^-24 of the
 * largest magnitude). Growing the range doubles the width, and a doubled bin is exactly the union
 * of two old ones, so re-binning loses nothing that the final width would keep. Hence the counts
 * after any sequence of {@link #observe} and {@link #merge} calls depend only on the multiset of
 * values: merging is order-independent, exactly (counts are integers).
 */
public final class Histogram {
    public static final int DEFAULT_CAPACITY = 4096;
    /** Bins finer than 2^-24 of the largest magnitude resolve nothing a float can hold. */
    private static final int FLOAT_PRECISION = 24;
    private static final int MIN_EXPONENT = Float.MIN_EXPONENT - FLOAT_PRECISION - 2;

    private final int capacity;
    private int exponent = MIN_EXPONENT;
    /** The absolute bin index of {@code counts[0]}: floor(min / 2^exponent). */
    private long origin;
    private final long[] counts;
    private long total;
    private double min = Double.POSITIVE_INFINITY;
    private double max = Double.NEGATIVE_INFINITY;

    public Histogram() {
        this(DEFAULT_CAPACITY);
    }

    public Histogram(int capacity) {
        if (capacity < 16) {
            throw new IllegalArgumentException("histogram capacity must be at least 16, got " + capacity);
        }
        this.capacity = capacity;
        this.counts = new long[capacity];
    }

    /** Adds the finite values of a batch; NaN and infinities are skipped. */
    public void observe(float[] values) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (float v : values) {
            if (Float.isFinite(v)) {
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
        }
        if (lo > hi) {
            return;
        }
        growTo(Math.min(min, lo), Math.max(max, hi));
        double inv = Math.scalb(1.0, -exponent);
        for (float v : values) {
            if (Float.isFinite(v)) {
                counts[bin(v, inv)]++;
                total++;
            }
        }
    }

    /** Adds another histogram's counts (of the same capacity) to this one. */
    public void merge(Histogram other) {
        if (other.capacity != capacity) {
            throw new IllegalArgumentException("cannot merge histograms of " + other.capacity + " and " + capacity + " bins");
        }
        if (other.total == 0) {
            return;
        }
        growTo(Math.min(min, other.min), Math.max(max, other.max));
        int shift = exponent - other.exponent;
        for (int b = 0; b < capacity; b++) {
            long c = other.counts[b];
            if (c != 0) {
                counts[Math.toIntExact(shiftDown(other.origin + b, shift) - origin)] += c;
            }
        }
        total += other.total;
    }

    private int bin(double v, double inv) {
        long k = (long) Math.floor(v * inv) - origin;
        // Only rounding at the very edge of the range could leave [0, capacity); keep it in.
        return (int) Math.max(0, Math.min(capacity - 1, k));
    }

    /** Re-bins to the exponent that [lo, hi] needs and moves the origin to floor(lo / width). */
    private void growTo(double lo, double hi) {
        int e = Math.max(exponent, exponentFor(lo, hi, capacity));
        long newOrigin = floorIndex(lo, e);
        if (total > 0 && (e != exponent || newOrigin != origin)) {
            long[] old = counts.clone();
            Arrays.fill(counts, 0);
            int shift = e - exponent;
            for (int b = 0; b < capacity; b++) {
                if (old[b] != 0) {
                    counts[Math.toIntExact(shiftDown(origin + b, shift) - newOrigin)] += old[b];
                }
            }
        }
        exponent = e;
        origin = newOrigin;
        min = lo;
        max = hi;
    }

    /** The smallest exponent at which [lo, hi] fits in {@code capacity} aligned bins. */
    static int exponentFor(double lo, double hi, int capacity) {
        double maxAbs = Math.max(Math.abs(lo), Math.abs(hi));
        int e = maxAbs > 0 ? Math.max(MIN_EXPONENT, Math.getExponent(maxAbs) - FLOAT_PRECISION) : MIN_EXPONENT;
        double span = hi - lo;
        if (span > 0) {
            e = Math.max(e, Math.getExponent(span / capacity) - 1);
        }
        while (floorIndex(hi, e) - floorIndex(lo, e) > capacity - 1) {
            e++;
        }
        return e;
    }

    private static long floorIndex(double v, int e) {
        return (long) Math.floor(Math.scalb(v, -e));
    }

    /** floor(k / 2^shift) for any shift ≥ 0. */
    private static long shiftDown(long k, int shift) {
        return shift >= 63 ? (k < 0 ? -1 : 0) : k >> shift;
    }

    public long total() {
        return total;
    }

    /** The smallest finite value seen (+∞ when empty). */
    public double min() {
        return min;
    }

    /** The largest finite value seen (-∞ when empty). */
    public double max() {
        return max;
    }

    public int capacity() {
        return capacity;
    }

    /** The width of every bin, 2^exponent. */
    public double width() {
        return Math.scalb(1.0, exponent);
    }

    /** The number of bins in use: those from floor(min/width) up to the one holding max. */
    public int bins() {
        return total == 0 ? 0 : Math.toIntExact(floorIndex(max, exponent) - origin + 1);
    }

    public long count(int bin) {
        return counts[bin];
    }

    /** The lower edge of a bin, clipped to the exact minimum. */
    public double lower(int bin) {
        return Math.max(min, Math.scalb((double) (origin + bin), exponent));
    }

    /** The upper edge of a bin, clipped to the exact maximum. */
    public double upper(int bin) {
        return Math.min(max, Math.scalb((double) (origin + bin + 1), exponent));
    }

    /**
     * Counts of |x| in bins of {@code width} from 0: bin j holds x in [j·width, (j+1)·width) and
     * x in [-(j+1)·width, -j·width).
     */
    public record Magnitudes(long[] counts, double width) {
    }

    /**
     * The histogram of |x| in at most {@code maxBins} bins. Bins are aligned to multiples of the
     * width, so folding the negative side onto the positive one, and merging 2^s neighbours to
     * stay within {@code maxBins}, are exact.
     */
    public Magnitudes magnitudes(int maxBins) {
        if (total == 0) {
            return new Magnitudes(new long[0], width());
        }
        long top = Math.max(Math.abs(origin), Math.abs(origin + bins()));
        int s = 0;
        while (shiftDown(top, s) >= maxBins) {
            s++;
        }
        long[] out = new long[(int) shiftDown(top, s) + 1];
        for (int b = 0; b < bins(); b++) {
            long k = origin + b;
            long j = k >= 0 ? k : -k - 1;
            out[(int) shiftDown(j, s)] += counts[b];
        }
        return new Magnitudes(out, Math.scalb(1.0, exponent + s));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Histogram h && h.capacity == capacity && h.total == total && h.exponent == exponent
                && h.origin == origin && Double.compare(h.min, min) == 0 && Double.compare(h.max, max) == 0
                && Arrays.equals(h.counts, counts);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(counts) * 31 + Long.hashCode(total) + exponent;
    }

    @Override
    public String toString() {
        return "Histogram[" + total + " values in [" + min + ", " + max + "], " + bins() + " bins of " + width() + "]";
    }
}
