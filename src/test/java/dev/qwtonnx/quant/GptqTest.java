package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** GPTQ against round-to-nearest on layers with known input statistics. */
class GptqTest {
    /** Rows of correlated inputs: a few latent factors plus noise, one input channel with large energy. */
    static float[] inputs(Random r, int rows, int k) {
        return inputs(r, rows, k, mixing(r, k));
    }

    static double[][] mixing(Random r, int k) {
        double[][] mix = new double[4][k];
        for (double[] m : mix) {
            for (int i = 0; i < k; i++) {
                m[i] = r.nextGaussian();
            }
        }
        return mix;
    }

    static float[] inputs(Random r, int rows, int k, double[][] mix) {
        int latent = mix.length;
        float[] x = new float[rows * k];
        for (int t = 0; t < rows; t++) {
            double[] z = new double[latent];
            for (int j = 0; j < latent; j++) {
                z[j] = r.nextGaussian();
            }
            for (int i = 0; i < k; i++) {
                double v = 0.3 * r.nextGaussian();
                for (int j = 0; j < latent; j++) {
                    v += z[j] * mix[j][i];
                }
                x[t * k + i] = (float) (i == 3 ? 10 * v : v);
            }
        }
        return x;
    }

    /** Σ over rows of ‖x·(W − Wq)‖², W as [k][n] (MatMul layout, channel axis 1). */
    static double outputError(float[] x, int rows, int k, int n, float[] w, QuantizedWeight q) {
        double e = 0;
        for (int t = 0; t < rows; t++) {
            for (int c = 0; c < n; c++) {
                double d = 0;
                for (int i = 0; i < k; i++) {
                    d += x[t * k + i] * (w[i * n + c] - q.values()[i * n + c] * (double) q.scales()[c]);
                }
                e += d * d;
            }
        }
        return e;
    }

    static QuantizedWeight nearest(float[] w, long[] dims, int axis, int qmax) {
        return QuantizedWeight.nearest(java.nio.FloatBuffer.wrap(w), dims, axis, qmax);
    }

    @Test
    void gptqLowersTheLayerOutputErrorAtFourBits() {
        Random r = new Random(5);
        int k = 48;
        int n = 16;
        int rows = 600;
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.2 * r.nextGaussian());
        }
        double[][] mix = mixing(r, k);
        float[] calib = inputs(r, rows, k, mix);
        double[] h = new double[k * k];
        InputMoments.addOuterProducts(h, calib, k);
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < i; j++) {
                h[i * k + j] = h[j * k + i];
            }
        }
        long[] dims = {k, n};
        int qmax = 7;
        QuantizedWeight g = Gptq.quantize(w, dims, 1, Gptq.factor(h, k), qmax);
        QuantizedWeight rtn = nearest(w, dims, 1, qmax);
        for (int v : g.values()) {
            assertTrue(v >= -qmax && v <= qmax, "value off the grid: " + v);
        }
        for (float s : g.scales()) {
            assertTrue(s > 0);
        }
        // Judged on inputs drawn from the same distribution but not used for the fit.
        float[] test = inputs(new Random(6), rows, k, mix);
        double eg = outputError(test, rows, k, n, w, g);
        double er = outputError(test, rows, k, n, w, rtn);
        assertTrue(eg < 0.7 * er, "GPTQ " + eg + " vs nearest " + er);
    }

    @Test
    void transposedLayoutGivesTheTransposedAnswer() {
        Random r = new Random(9);
        int k = 12;
        int n = 5;
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        float[] wt = new float[k * n];
        for (int i = 0; i < k; i++) {
            for (int c = 0; c < n; c++) {
                wt[c * k + i] = w[i * n + c];
            }
        }
        double[] h = new double[k * k];
        InputMoments.addOuterProducts(h, inputs(r, 50, k), k);
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < i; j++) {
                h[i * k + j] = h[j * k + i];
            }
        }
        Gptq.Factor f = Gptq.factor(h, k);
        QuantizedWeight a = Gptq.quantize(w, new long[] {k, n}, 1, f, 127);
        QuantizedWeight b = Gptq.quantize(wt, new long[] {n, k}, 0, f, 127);
        assertArrayEquals(a.scales(), b.scales());
        for (int i = 0; i < k; i++) {
            for (int c = 0; c < n; c++) {
                assertEquals(a.values()[i * n + c], b.values()[c * k + i]);
            }
        }
    }

    @Test
    void deadInputsGetZeroWeightsAndOuterProductsMatchTheDefinition() {
        int k = 3;
        float[] x = {1, 0, 2, -1, 0, 3};
        double[] h = new double[9];
        assertEquals(2, InputMoments.addOuterProducts(h, x, k));
        assertEquals(1 + 1, h[0], 1e-12);
        assertEquals(2 - 3, h[2], 1e-12);
        assertEquals(4 + 9, h[8], 1e-12);
        assertEquals(0, h[4], 1e-12);
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < i; j++) {
                h[i * k + j] = h[j * k + i];
            }
        }
        float[] w = {0.5f, -0.2f, 0.9f, 0.4f, -0.3f, 0.1f};
        QuantizedWeight q = Gptq.quantize(w, new long[] {3, 2}, 1, Gptq.factor(h, k), 127);
        assertEquals(0, q.values()[2]); // input 1 is never non-zero
        assertEquals(0, q.values()[3]);
    }

    @Test
    void inverseFactorReproducesTheInverse() {
        double[][] h = {{4, 1, 0.5}, {1, 3, 0.2}, {0.5, 0.2, 2}};
        double[][] u = Gptq.upperCholeskyOfInverse(h);
        // Uᵀ·U·H = I
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int m = 0; m < 3; m++) {
                    double inv = 0;
                    for (int p = 0; p < 3; p++) {
                        inv += u[p][i] * u[p][m];
                    }
                    s += inv * h[m][j];
                }
                assertEquals(i == j ? 1 : 0, s, 1e-12);
                if (j < i) {
                    assertEquals(0, u[i][j]);
                }
            }
        }
    }
}
