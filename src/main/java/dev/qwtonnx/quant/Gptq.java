package dev.qwtonnx.quant;

import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * GPTQ (Frantar et al., 2022) for a 2-D weight with per-output-channel symmetric scales.
 *
 * <p>The layer error for inputs x is Σ‖(W − Q)ᵀx‖² = tr((W − Q)ᵀ H (W − Q)) with H = Σ x·xᵀ. Input
 * rows of W are rounded one at a time, in order of decreasing input energy H[i][i], and the rounding
 * error of row i is spread over the rows not yet rounded through the Cholesky factor of H⁻¹, which
 * is the closed-form optimum of the remaining rows given row i. Each channel's scale is chosen first,
 * as the clipping of max|w| that minimises Σ H[i][i]·(w − q(w))² over that channel.
 */
public final class Gptq {
    /** Fraction of the mean diagonal added to H so that its inverse exists and stays tame. */
    static final double DAMPING = 0.01;
    /** Clipping ratios of max|w| tried for each channel's scale. */
    static final int CLIP_STEPS = 20;
    static final double MIN_CLIP = 0.5;

    private Gptq() {
    }

    /**
     * What GPTQ needs of a layer input, computed once per input tensor and shared by the layers
     * reading it: the rounding order, the energies, and the Cholesky factor of the damped H⁻¹ in
     * that order.
     */
    public record Factor(int k, int[] order, double[] diag, double[][] u) {
    }

    /** @param h K×K second moments of the layer input, row-major (not modified) */
    public static Factor factor(double[] h, int k) {
        if (h.length != (long) k * k) {
            throw new IllegalArgumentException("input moments are " + h.length + " values for " + k + " inputs");
        }
        double[] diag = new double[k];
        double mean = 0;
        for (int i = 0; i < k; i++) {
            diag[i] = h[i * k + i];
            mean += diag[i];
        }
        mean /= k;
        if (!(mean > 0)) {
            mean = 1; // no input energy at all: plain rounding is as good as any
        }
        // Rows in order of decreasing input energy.
        int[] order = IntStream.range(0, k).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -diag[i]).thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
        double[][] hp = new double[k][k];
        for (int a = 0; a < k; a++) {
            int i = order[a];
            for (int b = 0; b < k; b++) {
                hp[a][b] = h[i * k + order[b]];
            }
            if (diag[i] == 0) {
                hp[a][a] = 1; // a dead input: its weights are zeroed below
            }
            hp[a][a] += DAMPING * mean;
        }
        return new Factor(k, order, diag, upperCholeskyOfInverse(hp));
    }

    /**
     * @param w    the float weight, 2-D, in its own layout
     * @param dims its dimensions
     * @param axis the output-channel axis (the other is the input axis, matching the factor)
     * @param qmax the largest integer magnitude
     */
    public static QuantizedWeight quantize(float[] w, long[] dims, int axis, Factor f, int qmax) {
        if (dims.length != 2) {
            throw new IllegalArgumentException("GPTQ needs a 2-D weight, got rank " + dims.length);
        }
        int n = (int) dims[axis];
        int k = (int) dims[1 - axis];
        if (k != f.k()) {
            throw new IllegalArgumentException("weight has " + k + " inputs, the input moments " + f.k());
        }
        // W as [input][channel], in double.
        double[][] wt = new double[k][n];
        for (int i = 0; i < k; i++) {
            for (int c = 0; c < n; c++) {
                wt[i][c] = f.diag()[i] == 0 ? 0 : w[axis == 1 ? i * n + c : c * k + i];
            }
        }
        float[] scales = clippedScales(wt, f.diag(), qmax);
        int[] order = f.order();
        double[][] u = f.u();
        int[][] q = new int[k][n];
        double[] err = new double[n];
        for (int a = 0; a < k; a++) {
            double[] row = wt[order[a]];
            double d = u[a][a];
            for (int c = 0; c < n; c++) {
                int qi = round(row[c], scales[c], qmax);
                q[order[a]][c] = qi;
                err[c] = (row[c] - qi * (double) scales[c]) / d;
            }
            double[] ua = u[a];
            for (int b = a + 1; b < k; b++) {
                double g = ua[b];
                if (g == 0) {
                    continue;
                }
                double[] later = wt[order[b]];
                for (int c = 0; c < n; c++) {
                    later[c] -= err[c] * g;
                }
            }
        }
        byte[] values = new byte[w.length];
        for (int i = 0; i < k; i++) {
            for (int c = 0; c < n; c++) {
                values[axis == 1 ? i * n + c : c * k + i] = (byte) q[i][c]; // |q| <= qmax <= 127
            }
        }
        return new QuantizedWeight(scales, values);
    }

    static int round(double v, float scale, int qmax) {
        double r = Math.rint(v / scale);
        return (int) Math.max(-qmax, Math.min(qmax, r));
    }

    /** Per channel, the scale (a clipping of max|w|) with the least input-energy-weighted rounding error. */
    static float[] clippedScales(double[][] wt, double[] diag, int qmax) {
        int k = wt.length;
        int n = wt[0].length;
        float[] scales = new float[n];
        for (int c = 0; c < n; c++) {
            double max = 0;
            for (int i = 0; i < k; i++) {
                max = Math.max(max, Math.abs(wt[i][c]));
            }
            if (max == 0) {
                scales[c] = 1f / qmax;
                continue;
            }
            float best = (float) (max / qmax);
            double bestErr = Double.POSITIVE_INFINITY;
            for (int step = 0; step <= CLIP_STEPS; step++) {
                double ratio = 1 - (1 - MIN_CLIP) * step / CLIP_STEPS;
                float s = (float) (ratio * max / qmax);
                double e = 0;
                for (int i = 0; i < k; i++) {
                    double d = wt[i][c] - round(wt[i][c], s, qmax) * (double) s;
                    e += (diag[i] > 0 ? diag[i] : 0) * d * d;
                }
                if (e < bestErr) {
                    bestErr = e;
                    best = s;
                }
            }
            scales[c] = best;
        }
        return scales;
    }

    /** U upper triangular with Uᵀ·U = H⁻¹, for symmetric positive definite H (not modified). */
    static double[][] upperCholeskyOfInverse(double[][] h) {
        int k = h.length;
        double[][] l = cholesky(h);
        // inv(L) by forward substitution, then H⁻¹ = inv(L)ᵀ·inv(L).
        double[][] li = new double[k][k];
        for (int i = 0; i < k; i++) {
            // Row i of L·inv(L) = I, solved along rows so that the inner loop runs over contiguous memory.
            double[] row = li[i];
            row[i] = 1;
            double[] lrow = l[i];
            for (int m = 0; m < i; m++) {
                double f = lrow[m];
                if (f == 0) {
                    continue;
                }
                double[] lm = li[m];
                for (int j = 0; j <= m; j++) {
                    row[j] -= f * lm[j];
                }
            }
            double d = lrow[i];
            for (int j = 0; j <= i; j++) {
                row[j] /= d;
            }
        }
        double[][] lit = new double[k][k]; // inv(L)ᵀ, so that the sums below run along rows
        for (int i = 0; i < k; i++) {
            for (int j = 0; j <= i; j++) {
                lit[j][i] = li[i][j];
            }
        }
        double[][] inv = new double[k][k];
        for (int i = 0; i < k; i++) {
            double[] ri = lit[i];
            for (int j = 0; j <= i; j++) {
                double[] rj = lit[j];
                double s = 0;
                for (int m = i; m < k; m++) {
                    s += ri[m] * rj[m];
                }
                inv[i][j] = s;
                inv[j][i] = s;
            }
        }
        double[][] lower = cholesky(inv);
        double[][] u = new double[k][k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j <= i; j++) {
                u[j][i] = lower[i][j];
            }
        }
        return u;
    }

    /** Lower-triangular L with L·Lᵀ = a; a diagonal that turns non-positive is lifted (a is positive definite up to rounding). */
    static double[][] cholesky(double[][] a) {
        int k = a.length;
        double[][] l = new double[k][k];
        for (int j = 0; j < k; j++) {
            double d = a[j][j];
            double[] lj = l[j];
            for (int m = 0; m < j; m++) {
                d -= lj[m] * lj[m];
            }
            if (!(d > 0)) {
                d = Math.max(Math.abs(a[j][j]), 1e-12) * 1e-6;
            }
            lj[j] = Math.sqrt(d);
            for (int i = j + 1; i < k; i++) {
                double[] li = l[i];
                double s = a[i][j];
                for (int m = 0; m < j; m++) {
                    s -= li[m] * lj[m];
                }
                li[j] = s / lj[j];
            }
        }
        return l;
    }
}
