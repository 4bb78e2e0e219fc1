package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.run.AccuracyOptions;
import picocli.CommandLine.Option;

/** quantize's accuracy target and --strict. */
final class AccuracyMixin {
    @Option(names = "--min-sqnr", paramLabel = "DB", description = "Accuracy target: every output's SQNR on the "
            + "held-out samples (of their energies summed) at least DB; layers are returned to float, measured "
            + "together, until it holds.")
    Double minSqnr;

    @Option(names = "--min-cosine", paramLabel = "C", description = "Accuracy target: every output's mean cosine "
            + "similarity on the held-out samples at least C (as --min-sqnr).")
    Double minCosine;

    @Option(names = "--metric", paramLabel = "M", description = "The metric --min-score bounds: cosine or sqnr (every "
            + "output), top1 (agreement of the first output's arg-max) or iou:THRESHOLD (the first output "
            + "thresholded at THRESHOLD).")
    String metric;

    @Option(names = "--min-score", paramLabel = "S", description = "Accuracy target: the mean of --metric at least S.")
    Double minScore;

    @Option(names = "--strict", description = "Exit with code 3 and write nothing when the accuracy target is missed or "
            + "the output's held-out fidelity is poor (otherwise a warning).")
    boolean strict;

    /** The options, checked before any work. */
    AccuracyOptions options() {
        if ((metric == null) != (minScore == null)) {
            throw new QwtException("--metric and --min-score go together");
        }
        if (minCosine != null && !(minCosine > -1 && minCosine <= 1)) {
            throw new QwtException("--min-cosine must be in (-1, 1], got " + minCosine);
        }
        AccuracyOptions a = AccuracyOptions.NONE.withStrict(strict);
        if (minSqnr != null) {
            a = a.withGoal(new AccuracyOptions.Goal("sqnr", null, minSqnr));
        }
        if (minCosine != null) {
            a = a.withGoal(new AccuracyOptions.Goal("cosine", null, minCosine));
        }
        if (metric != null) {
            a = a.withGoal(new AccuracyOptions.Goal(metric, null, minScore));
        }
        return a;
    }

    /** Whether the run must measure the output's fidelity even with --quiet and no report. */
    boolean needsFidelity() {
        return strict || minSqnr != null || minCosine != null || metric != null;
    }
}
