package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.FloatTensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The closed-form fit on synthetic channels with known answers. */
class SolverTest {
    /** Channel 0: yf = 1.5·yq + 0.3; channel 1: yf = −yq (anti-correlated); channel 2: yq constant. */
    static ChannelStats stats(long seed) {
        Random r = new Random(seed);
        int n = 2000;
        float[] q = new float[3 * n];
        float[] f = new float[3 * n];
        for (int i = 0; i < n; i++) {
            float x = (float) r.nextGaussian();
            q[i] = x;
            f[i] = 1.5f * x + 0.3f;
            q[n + i] = x;
            f[n + i] = -x;
            q[2 * n + i] = 0.7f;
            f[2 * n + i] = 0.2f + (float) r.nextGaussian() * 0.01f;
        }
        ChannelStats s = new ChannelStats(3);
        // Shape [1, 3, n] with channel axis 1: each channel's values are contiguous.
        s.add(new FloatTensor(q, new long[] {1, 3, n}), new FloatTensor(f, new long[] {1, 3, n}), 1);
        return s;
    }

    @Test
    void recoversAKnownAffineMap() {
        ChannelStats s = stats(1);
        ChannelFit fit = Solver.fit(s, CwacOptions.Method.CWAC, true, 0.0, 2.0);
        assertEquals(1.5, fit.a()[0], 1e-5);
        assertEquals(0.3, fit.b()[0], 1e-5);
        assertTrue(Solver.sse(s, 0, fit.a()[0], fit.b()[0]) < 1e-6 * Solver.sse(s, 0, 1, 0));
        assertTrue(fit.sseAfter() < fit.sseBefore());
    }

    @Test
    void ridgePullsTheGainTowardOne() {
        ChannelFit fit = Solver.fit(stats(1), CwacOptions.Method.CWAC, true, 1.0, 2.0);
        assertEquals(1.25, fit.a()[0], 1e-4); // (1.5 + 1) / (1 + 1)
    }

    @Test
    void neverAZeroOrNegativeGain() {
        ChannelFit fit = Solver.fit(stats(1), CwacOptions.Method.CWAC, true, 0.0, 2.0);
        assertTrue(fit.a()[1] > 0, "gain " + fit.a()[1]);
        assertEquals(1.0, fit.a()[1]);
        // A constant input channel has no slope to fit: gain 1, the shift moves the mean.
        assertEquals(1.0, fit.a()[2]);
        assertEquals(0.2 - 0.7, fit.b()[2], 2e-3);
    }

    @Test
    void biasMethodOnlyShifts() {
        ChannelStats s = stats(1);
        ChannelFit fit = Solver.fit(s, CwacOptions.Method.BIAS, true, 0.0, 2.0);
        for (double a : fit.a()) {
            assertEquals(1.0, a);
        }
        assertEquals((s.sf[0] - s.sq[0]) / s.n[0], fit.b()[0], 1e-12); // mean(yf) − mean(yq)
    }

    @Test
    void withoutABiasTheShiftStaysZero() {
        ChannelFit fit = Solver.fit(stats(1), CwacOptions.Method.CWAC, false, 0.0, 2.0);
        for (double b : fit.b()) {
            assertEquals(0.0, b);
        }
        assertTrue(fit.a()[0] > 1.4 && fit.a()[0] <= 1.5, "gain " + fit.a()[0]);
        assertTrue(fit.sseAfter() <= fit.sseBefore());
    }

    @Test
    void gainIsClampedAndTheShiftRefitted() {
        ChannelFit fit = Solver.fit(stats(1), CwacOptions.Method.CWAC, true, 0.0, 1.2);
        assertEquals(1.2, fit.a()[0], 1e-12);
        assertEquals(0.3, fit.b()[0], 0.01); // mean of yf − 1.2·yq with mean yq ≈ 0
    }

    /**
     * Channel 0: yf = 1.5·yq + 0.3 (a real gain); channel 1: yf = yq + 0.5 (a real shift); channels
     * 2..: yf = yq + noise, where any fitted gain or shift is noise. {@code points} per channel.
     */
    static ChannelStats noisy(long seed, int channels, int points) {
        Random r = new Random(seed);
        float[] q = new float[channels * points];
        float[] f = new float[channels * points];
        for (int c = 0; c < channels; c++) {
            for (int i = 0; i < points; i++) {
                float x = (float) r.nextGaussian();
                int k = c * points + i;
                q[k] = x;
                f[k] = c == 0 ? 1.5f * x + 0.3f + 0.01f * (float) r.nextGaussian()
                        : c == 1 ? x + 0.5f + 0.01f * (float) r.nextGaussian()
                        : x + (float) r.nextGaussian();
            }
        }
        ChannelStats s = new ChannelStats(channels);
        s.add(new FloatTensor(q, new long[] {1, channels, points}), new FloatTensor(f, new long[] {1, channels, points}), 1);
        return s;
    }

    static double sse(ChannelStats s, ChannelFit fit) {
        double e = 0;
        for (int c = 0; c < s.channels(); c++) {
            e += Solver.sse(s, c, fit.a()[c], fit.b()[c]);
        }
        return e;
    }

    @Test
    void crossValidatedGateKeepsOnlyMapsThatGeneralise() {
        int channels = 400;
        ChannelStats f0 = noisy(11, channels, 4);
        ChannelStats f1 = noisy(12, channels, 4);
        ChannelStats fresh = noisy(13, channels, 400);
        ChannelFit plain = Solver.fit(ChannelStats.sum(f0, f1), CwacOptions.Method.CWAC, true, 0.0, 2.0);
        ChannelFit gated = Solver.fitCrossValidated(f0, f1, CwacOptions.Method.CWAC, true, 0.0, 2.0);

        // The real gain and the real shift survive the gate.
        assertEquals(1.5, gated.a()[0], 0.02);
        assertEquals(0.3, gated.b()[0], 0.02);
        assertEquals(1.0, gated.a()[1]);
        assertEquals(0.5, gated.b()[1], 0.02);

        // On the noise channels the plain fit moves every channel; the gate leaves most alone.
        int untouched = 0;
        int plainUntouched = 0;
        for (int c = 2; c < channels; c++) {
            untouched += gated.a()[c] == 1.0 && gated.b()[c] == 0.0 ? 1 : 0;
            plainUntouched += plain.a()[c] == 1.0 && plain.b()[c] == 0.0 ? 1 : 0;
        }
        assertEquals(0, plainUntouched);
        assertTrue(untouched > (channels - 2) / 2, "untouched noise channels: " + untouched);

        // And on samples neither saw, the gated maps predict better than the plain ones.
        assertTrue(sse(fresh, gated) < sse(fresh, plain), sse(fresh, gated) + " vs " + sse(fresh, plain));
    }

    @Test
    void gateWithAnEmptyFoldIsThePlainFit() {
        ChannelStats s = stats(1);
        ChannelFit gated = Solver.fitCrossValidated(s, new ChannelStats(3), CwacOptions.Method.CWAC, true, 0.0, 2.0);
        ChannelFit plain = Solver.fit(s, CwacOptions.Method.CWAC, true, 0.0, 2.0);
        assertEquals(plain.a()[0], gated.a()[0]);
        assertEquals(plain.b()[0], gated.b()[0]);
    }
}
