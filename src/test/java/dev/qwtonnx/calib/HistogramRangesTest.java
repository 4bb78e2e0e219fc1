package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.quant.QuantMath;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Range methods on synthetic distributions whose best range is known or brute-forced. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HistogramRangesTest {
    static final float OUTLIER = 12f;
    float[] gaussian;
    Histogram withOutliers;

    @BeforeAll
    void data() {
        Random r = new Random(42);
        gaussian = new float[1_000_000];
        for (int i = 0; i < gaussian.length; i++) {
            gaussian[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < 4; i++) {
            gaussian[r.nextInt(gaussian.length)] = OUTLIER;
        }
        withOutliers = new Histogram();
        // In batches, as calibration feeds it.
        for (int i = 0; i < gaussian.length; i += 100_000) {
            withOutliers.observe(java.util.Arrays.copyOfRange(gaussian, i, i + 100_000));
        }
    }

    /** The squared error of really quantizing the values to uint8 over the range (as the quantizer does). */
    static double trueError(float[] x, Range r) {
        QuantMath.Affine a = QuantMath.uint8(r);
        double err = 0;
        for (float v : x) {
            double q = Math.max(0, Math.min(255, Math.rint(v / a.scale()) + a.zeroPoint()));
            double d = (q - a.zeroPoint()) * a.scale() - v;
            err += d * d;
        }
        return err;
    }

    @Test
    void minMaxKeepsTheOutliers() {
        Range r = HistogramRanges.choose(withOutliers, RangeMethod.MINMAX, 99.99);
        assertEquals(OUTLIER, r.max());
        assertTrue(r.min() < -4.5f && r.min() > -6f, r.toString());
    }

    @Test
    void percentileClipsTheOutliersAtTheGaussianQuantile() {
        Range r = HistogramRanges.choose(withOutliers, RangeMethod.PERCENTILE, 99.99);
        // 0.005 % per side: the standard normal quantile is ±3.8906.
        assertEquals(3.89, r.max(), 0.08, r.toString());
        assertEquals(-3.89, r.min(), 0.08, r.toString());
        Range p90 = HistogramRanges.percentile(withOutliers, 90);
        assertEquals(1.6449, p90.max(), 0.01, p90.toString());
        assertEquals(-1.6449, p90.min(), 0.01, p90.toString());
    }

    @Test
    void entropyClipsTheOutliersButKeepsTheBulk() {
        Range r = HistogramRanges.choose(withOutliers, RangeMethod.ENTROPY, 99.99);
        System.out.println("entropy " + r);
        assertTrue(r.max() > 2.5f && r.max() < 8f, r.toString());
        assertTrue(r.min() < -2.5f, r.toString());
    }

    @Test
    void mseFindsTheRangeOfLeastRealQuantizationError() {
        Range r = HistogramRanges.choose(withOutliers, RangeMethod.MSE, 99.99);
        assertTrue(r.max() < 9f, "MSE should clip the outliers at " + OUTLIER + ": " + r);
        double chosen = trueError(gaussian, r);
        double minMax = trueError(gaussian, HistogramRanges.minMax(withOutliers));
        double best = Double.POSITIVE_INFINITY;
        Range bestRange = null;
        for (float hi = 4f; hi <= 12f; hi += 0.25f) {
            for (float lo = -5f; lo <= -3.4f; lo += 0.2f) {
                double e = trueError(gaussian, new Range(lo, hi));
                if (e < best) {
                    best = e;
                    bestRange = new Range(lo, hi);
                }
            }
        }
        System.out.printf("MSE %s err %.1f; grid best %s err %.1f; minmax err %.1f%n", r, chosen, bestRange, best, minMax);
        assertTrue(chosen < 0.85 * minMax, "chosen " + chosen + " vs minmax " + minMax);
        assertTrue(chosen <= 1.02 * best, "chosen " + r + " " + chosen + " vs grid best " + bestRange + " " + best);
    }

    @Test
    void oneSidedValuesKeepZeroAsTheirLowerEnd() {
        Random rnd = new Random(3);
        float[] relu = new float[1_000_000];
        for (int i = 0; i < relu.length; i++) {
            relu[i] = (float) Math.max(0, rnd.nextGaussian());
        }
        relu[17] = 20f;
        Histogram h = new Histogram();
        h.observe(relu);
        for (RangeMethod m : RangeMethod.values()) {
            Range r = HistogramRanges.choose(h, m, 99.9);
            assertEquals(0f, r.min(), 1e-3, m.label());
            assertTrue(m == RangeMethod.MINMAX ? r.max() == 20f : r.max() < 10f, m.label() + " " + r);
        }
    }

    @Test
    void withoutOutliersNoMethodClipsMuch() {
        Random rnd = new Random(5);
        float[] u = new float[300_000];
        for (int i = 0; i < u.length; i++) {
            u[i] = -1 + 3 * rnd.nextFloat();
        }
        Histogram h = new Histogram();
        h.observe(u);
        for (RangeMethod m : RangeMethod.values()) {
            Range r = HistogramRanges.choose(h, m, 99.99);
            // A uniform distribution has no tail worth clipping: every method keeps ≥ 97 % of it.
            assertTrue(r.max() > 1.9f && r.min() < -0.9f, m.label() + " " + r);
        }
    }
}
