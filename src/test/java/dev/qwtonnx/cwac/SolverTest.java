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
}
