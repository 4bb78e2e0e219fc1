package dev.qwtonnx.cwac;

/**
 * Closed-form per-channel fit of yf ≈ a·yq + b from running sums, by ridge regression pulling a
 * toward 1: minimise Σ(yf − a·yq − b)² + λ(a − 1)² with λ = ridge · Var(yq)·n. Without a bias to fold
 * into, b is held at 0.
 */
public final class Solver {
    private Solver() {
    }

    public static ChannelFit fit(ChannelStats s, CwacOptions.Method method, boolean canShift, double ridge,
            double maxGain) {
        int channels = s.channels();
        double[] a = new double[channels];
        double[] b = new double[channels];
        double before = 0;
        double after = 0;
        long count = 0;
        for (int c = 0; c < channels; c++) {
            long n = s.n[c];
            count += n;
            double ac = 1;
            double bc = 0;
            if (n > 0 && method != CwacOptions.Method.NONE) {
                double mq = s.sq[c] / n;
                double mf = s.sf[c] / n;
                if (method == CwacOptions.Method.BIAS) {
                    bc = canShift ? mf - mq : 0;
                } else if (canShift) {
                    double sxx = s.sqq[c] - n * mq * mq;
                    double sxy = s.sqf[c] - n * mq * mf;
                    double lambda = ridge * Math.max(sxx, 0);
                    ac = sxx > 1e-12 * Math.max(1, s.sqq[c]) ? (sxy + lambda) / (sxx + lambda) : 1;
                    ac = clampGain(ac, maxGain);
                    bc = mf - ac * mq;
                } else {
                    double lambda = ridge * s.sqq[c];
                    ac = s.sqq[c] > 0 ? (s.sqf[c] + lambda) / (s.sqq[c] + lambda) : 1;
                    ac = clampGain(ac, maxGain);
                }
            }
            double e0 = sse(s, c, 1, 0);
            double e1 = sse(s, c, ac, bc);
            if (!(e1 <= e0) || !Double.isFinite(ac) || !Double.isFinite(bc)) {
                // Never make a channel worse on the data it was fitted to (possible only through clamping).
                ac = 1;
                bc = 0;
                e1 = e0;
            }
            a[c] = ac;
            b[c] = bc;
            before += e0;
            after += e1;
        }
        return new ChannelFit(a, b, before, after, count);
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
