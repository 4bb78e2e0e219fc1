package dev.qwtonnx.cwac;

import java.util.List;

/**
 * Closed-form per-channel fit of yf ≈ a·yq + b from running sums, by ridge regression pulling a
 * toward 1: minimise Σ(yf − a·yq − b)² + λ(a − 1)² with λ = ridge · Var(yq)·n. Without a bias to fold
 * into, b is held at 0.
 *
 * <p>With the cross-validated gate each channel chooses among the candidate maps — none (a = 1,
 * b = 0), shift only (a = 1), full affine — the one with the lowest error on the half of the
 * calibration samples it was not fitted to (two folds, each fitted on one half and scored on the
 * other). The chosen map is then refitted on all the samples. A gain fitted on few or noisy samples
 * is what hurts a model at low bit widths: the gate keeps it only where it generalises, QwT's
 * "keep a block's compensation only when R² &gt; 0" made per channel and honest.
 */
public final class Solver {
    private Solver() {
    }

    /** The candidate maps, simplest first: on equal held-out error the simpler one wins. */
    enum Candidate { IDENTITY, SHIFT, AFFINE }

    public static ChannelFit fit(ChannelStats s, CwacOptions.Method method, boolean canShift, double ridge,
            double maxGain) {
        Candidate kind = switch (method) {
            case NONE -> Candidate.IDENTITY;
            case BIAS -> Candidate.SHIFT;
            case CWAC -> Candidate.AFFINE;
        };
        int channels = s.channels();
        Candidate[] chosen = new Candidate[channels];
        java.util.Arrays.fill(chosen, kind);
        return refit(s, chosen, canShift, ridge, maxGain);
    }

    /**
     * Per channel, the candidate (allowed by the method) with the lowest two-fold held-out error,
     * refitted on both folds. With a fold that saw no data there is nothing to hold out: the plain fit.
     */
    public static ChannelFit fitCrossValidated(ChannelStats fold0, ChannelStats fold1, CwacOptions.Method method,
            boolean canShift, double ridge, double maxGain) {
        ChannelStats all = ChannelStats.sum(fold0, fold1);
        if (fold0.isEmpty() || fold1.isEmpty()) {
            return fit(all, method, canShift, ridge, maxGain);
        }
        List<Candidate> allowed = switch (method) {
            case NONE -> List.of(Candidate.IDENTITY);
            case BIAS -> canShift ? List.of(Candidate.IDENTITY, Candidate.SHIFT) : List.of(Candidate.IDENTITY);
            case CWAC -> canShift ? List.of(Candidate.IDENTITY, Candidate.SHIFT, Candidate.AFFINE)
                    : List.of(Candidate.IDENTITY, Candidate.AFFINE);
        };
        Candidate[] chosen = new Candidate[all.channels()];
        for (int c = 0; c < chosen.length; c++) {
            Candidate best = Candidate.IDENTITY;
            double bestError = Double.POSITIVE_INFINITY;
            for (Candidate k : allowed) {
                double[] m0 = map(fold0, c, k, canShift, ridge, maxGain);
                double[] m1 = map(fold1, c, k, canShift, ridge, maxGain);
                double heldOut = sse(fold1, c, m0[0], m0[1]) + sse(fold0, c, m1[0], m1[1]);
                if (heldOut < bestError) {
                    bestError = heldOut;
                    best = k;
                }
            }
            chosen[c] = best;
        }
        return refit(all, chosen, canShift, ridge, maxGain);
    }

    private static ChannelFit refit(ChannelStats s, Candidate[] chosen, boolean canShift, double ridge,
            double maxGain) {
        int channels = s.channels();
        double[] a = new double[channels];
        double[] b = new double[channels];
        double before = 0;
        double after = 0;
        long count = 0;
        for (int c = 0; c < channels; c++) {
            count += s.n[c];
            double[] m = map(s, c, chosen[c], canShift, ridge, maxGain);
            double e0 = sse(s, c, 1, 0);
            double e1 = sse(s, c, m[0], m[1]);
            if (!(e1 <= e0) || !Double.isFinite(m[0]) || !Double.isFinite(m[1])) {
                // Never make a channel worse on the data it was fitted to (possible only through clamping).
                m = new double[] {1, 0};
                e1 = e0;
            }
            a[c] = m[0];
            b[c] = m[1];
            before += e0;
            after += e1;
        }
        return new ChannelFit(a, b, before, after, count);
    }

    /** The map {a, b} of one candidate kind fitted to one channel's sums. */
    static double[] map(ChannelStats s, int c, Candidate kind, boolean canShift, double ridge, double maxGain) {
        long n = s.n[c];
        if (n == 0 || kind == Candidate.IDENTITY) {
            return new double[] {1, 0};
        }
        double mq = s.sq[c] / n;
        double mf = s.sf[c] / n;
        if (kind == Candidate.SHIFT) {
            return new double[] {1, canShift ? mf - mq : 0};
        }
        if (canShift) {
            double sxx = s.sqq[c] - n * mq * mq;
            double sxy = s.sqf[c] - n * mq * mf;
            double lambda = ridge * Math.max(sxx, 0);
            double a = sxx > 1e-12 * Math.max(1, s.sqq[c]) ? (sxy + lambda) / (sxx + lambda) : 1;
            a = clampGain(a, maxGain);
            return new double[] {a, mf - a * mq};
        }
        double lambda = ridge * s.sqq[c];
        double a = s.sqq[c] > 0 ? (s.sqf[c] + lambda) / (s.sqq[c] + lambda) : 1;
        return new double[] {clampGain(a, maxGain), 0};
    }

    private static double clampGain(double a, double maxGain) {
        if (!(a > 0)) {
            return 1; // a gain at or below zero would flip or zero the scale: no gain then
        }
        return Math.max(1 / maxGain, Math.min(maxGain, a));
    }

    /** Σ(yf − a·yq − b)² expanded over the running sums. */
    static double sse(ChannelStats s, int c, double a, double b) {
        double v = s.sff[c] + a * a * s.sqq[c] + s.n[c] * b * b - 2 * a * s.sqf[c] - 2 * b * s.sf[c]
                + 2 * a * b * s.sq[c];
        return Math.max(0, v);
    }
}
