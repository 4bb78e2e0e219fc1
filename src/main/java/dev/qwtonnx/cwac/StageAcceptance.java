package dev.qwtonnx.cwac;

/**
 * When a stage's change (a refitted requantization scale, a shift, a fit) is kept under output-level
 * acceptance: only where it lowers the output error on the acceptance samples by more than the noise
 * between them (docs/decisions/0017-acceptance.md).
 */
final class StageAcceptance {
    private StageAcceptance() {
    }

    /**
     * Whether a change from {@code base} to {@code candidate} is kept: both its squared output error
     * and its outputs' distance in angle to the float model's (1 − cosine) gain beyond the noise
     * ({@link #gains}); a lower squared error alone can come from outputs shrunk toward zero.
     */
    static boolean keeps(OutputError.Errors base, OutputError.Errors candidate) {
        return gains(base.parts(), candidate.parts()) && gains(distances(base), distances(candidate));
    }

    private static double[] distances(OutputError.Errors e) {
        double[] d = new double[e.cosines().length];
        for (int i = 0; i < d.length; i++) {
            d[i] = 1 - e.cosines()[i];
        }
        return d;
    }

    /**
     * Whether a change takes the per-sample output errors from {@code base} to {@code candidate} with a
     * gain beyond the noise between samples: the per-sample gains g_i = base_i − candidate_i are
     * positive on average in both halves of the samples (even and odd positions), and their mean
     * exceeds {@value #NOISE_MULTIPLE} standard errors (a paired test of the differences). With fewer
     * than {@value #MIN_SPLIT} samples there is no noise to measure and any lower total is a gain.
     * Why: docs/decisions/0017-acceptance.md.
     */
    static boolean gains(double[] base, double[] candidate) {
        int n = base.length;
        double[] g = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            g[i] = base[i] - candidate[i];
            sum += g[i];
        }
        if (n < MIN_SPLIT) {
            return sum > 0;
        }
        double even = 0;
        double odd = 0;
        for (int i = 0; i < n; i++) {
            if (i % 2 == 0) {
                even += g[i];
            } else {
                odd += g[i];
            }
        }
        double mean = sum / n;
        double ss = 0;
        for (double x : g) {
            ss += (x - mean) * (x - mean);
        }
        double standardError = Math.sqrt(ss / (n - 1) / n);
        return even > 0 && odd > 0 && mean > NOISE_MULTIPLE * standardError;
    }

    /** Standard errors of the per-sample gains a stage's change must exceed to be kept. */
    static final double NOISE_MULTIPLE = 3.0;

    /** Fewest samples that split into a fitting and an acceptance part, and into two halves to measure noise on. */
    static final int MIN_SPLIT = 4;

    /** Share of the calibration samples held out for acceptance when no acceptance samples are given. */
    static final double OWN_ACCEPTANCE_SHARE = 0.25;
}
