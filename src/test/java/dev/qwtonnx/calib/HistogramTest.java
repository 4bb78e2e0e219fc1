package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The streaming histogram: exact counts while the range grows, and order-independent merging. */
class HistogramTest {
    /** Batches of very different ranges, so the histogram must re-bin several times. */
    static List<float[]> batches(long seed) {
        Random r = new Random(seed);
        List<float[]> out = new ArrayList<>();
        out.add(fill(2000, () -> 0.001f + 0.001f * r.nextFloat()));
        out.add(fill(5000, () -> (float) r.nextGaussian()));
        out.add(fill(300, () -> -30 + 35 * r.nextFloat()));
        out.add(fill(100, () -> 0.5f));
        out.add(fill(4000, () -> (float) Math.exp(3 * r.nextGaussian())));
        out.add(new float[] {Float.NaN, 7f, Float.POSITIVE_INFINITY, -2f});
        return out;
    }

    static float[] fill(int n, java.util.function.Supplier<Float> f) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = f.get();
        }
        return v;
    }

    static Histogram observeAll(List<float[]> batches, int capacity) {
        Histogram h = new Histogram(capacity);
        for (float[] b : batches) {
            h.observe(b);
        }
        return h;
    }

    @Test
    void countsEveryFiniteValueInTheBinThatHoldsIt() {
        List<float[]> data = batches(1);
        Histogram h = observeAll(data, 512);
        long finite = data.stream().mapToLong(b -> {
            long n = 0;
            for (float v : b) {
                n += Float.isFinite(v) ? 1 : 0;
            }
            return n;
        }).sum();
        assertEquals(finite, h.total());
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (float[] b : data) {
            for (float v : b) {
                min = Float.isFinite(v) ? Math.min(min, v) : min;
                max = Float.isFinite(v) ? Math.max(max, v) : max;
            }
        }
        assertEquals(min, (float) h.min());
        assertEquals(max, (float) h.max());
        assertTrue(h.bins() <= h.capacity(), h.toString());
        // Each bin holds exactly the values within its edges (recounted from the raw data).
        long sum = 0;
        for (int b = 0; b < h.bins(); b++) {
            double lo = h.lower(b);
            double hi = h.upper(b);
            boolean last = b == h.bins() - 1;
            long direct = 0;
            for (float[] batch : data) {
                for (float v : batch) {
                    if (Float.isFinite(v) && v >= lo && (v < hi || (last && v <= hi))) {
                        direct++;
                    }
                }
            }
            assertEquals(direct, h.count(b), "bin " + b + " [" + lo + ", " + hi + ")");
            sum += h.count(b);
        }
        assertEquals(h.total(), sum);
    }

    @Test
    void theResultDependsOnlyOnTheValuesNotOnTheirOrder() {
        List<float[]> data = batches(2);
        Histogram forward = observeAll(data, 256);
        List<float[]> reversed = new ArrayList<>(data);
        Collections.reverse(reversed);
        Histogram backward = observeAll(reversed, 256);
        List<float[]> shuffled = new ArrayList<>(data);
        Collections.shuffle(shuffled, new Random(9));
        Histogram mixed = observeAll(shuffled, 256);
        // Histograms of single batches merged as a tree, in another order again.
        Histogram left = new Histogram(256);
        Histogram right = new Histogram(256);
        for (int i = 0; i < data.size(); i++) {
            Histogram one = new Histogram(256);
            one.observe(data.get(i));
            (i % 2 == 0 ? right : left).merge(one);
        }
        Histogram merged = new Histogram(256);
        merged.merge(right);
        merged.merge(left);
        // One batch holding everything.
        int n = data.stream().mapToInt(b -> b.length).sum();
        float[] all = new float[n];
        int k = 0;
        for (float[] b : shuffled) {
            System.arraycopy(b, 0, all, k, b.length);
            k += b.length;
        }
        Histogram once = new Histogram(256);
        once.observe(all);
        for (Histogram other : List.of(backward, mixed, merged, once)) {
            assertEquals(forward, other);
            for (RangeMethod m : RangeMethod.values()) {
                assertEquals(HistogramRanges.choose(forward, m, 99.9), HistogramRanges.choose(other, m, 99.9), m.label());
            }
        }
        Histogram fewer = observeAll(data.subList(0, data.size() - 1), 256);
        assertNotEquals(forward, fewer);
    }

    @Test
    void aConstantTensorThenAWideOneRebinsWithoutLoss() {
        Histogram h = new Histogram(128);
        h.observe(new float[] {0f, 0f, 0f});
        h.observe(new float[] {1e6f, -1e6f});
        assertEquals(5, h.total());
        assertTrue(h.bins() <= 128);
        long zeroBin = 0;
        for (int b = 0; b < h.bins(); b++) {
            if (h.lower(b) <= 0 && 0 < h.upper(b)) {
                zeroBin = h.count(b);
            }
        }
        assertEquals(3, zeroBin);
        assertEquals(new Range(-1e6f, 1e6f), HistogramRanges.minMax(h));
    }

    @Test
    void magnitudesFoldTheNegativeSideExactly() {
        Histogram h = new Histogram(256);
        float[] values = {-3f, -1.5f, -0.25f, 0.25f, 1.5f, 3f, 3f};
        h.observe(values);
        Histogram.Magnitudes m = h.magnitudes(64);
        assertTrue(m.counts().length <= 64);
        long total = 0;
        for (int j = 0; j < m.counts().length; j++) {
            double lo = j * m.width();
            double hi = lo + m.width();
            long direct = 0;
            for (float v : values) {
                // Folded bins of negative values are closed above instead of below.
                boolean in = v >= 0 ? v >= lo && v < hi : -v > lo && -v <= hi;
                direct += in ? 1 : 0;
            }
            assertEquals(direct, m.counts()[j], "magnitude bin " + j);
            total += m.counts()[j];
        }
        assertEquals(7, total);
    }
}
