package dev.qwtonnx.verify;

import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Latency of two models with the same session options, interleaved (float, int8, float, ...) so
 * that machine load hits both alike: either N runs each on the data set's first sample, so that
 * the spread is run-to-run variation (one warm-up run each first), or one run each per sample of a
 * pass that runs both models anyway (the fidelity pass), so that timing costs no run of its own.
 */
public final class LatencyMeter {
    private LatencyMeter() {
    }

    /**
     * Per-run milliseconds of each model: {@code runs} runs each, on {@code sample} (repeated) or on
     * {@code samples} different samples (sample null). The speed ratio is float over int8 time: of the
     * medians for repeated runs, of the totals over different samples (a long input weighs as it costs).
     */
    public record Result(String sample, int samples, int runs, Report.Latency floatLatency,
            Report.Latency quantLatency, double speedup) {
    }

    public static Result measure(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress) {
        try (OrtRunner fr = new OrtRunner(floatModel, List.of()); OrtRunner qr = new OrtRunner(quantModel, List.of())) {
            Sample s = data.iterator().next();
            List<String> outs = outputs(floatModel);
            fr.run(s, outs);
            qr.run(s, outs);
            return repeated(fr, qr, s, outs, runs, progress);
        }
    }

    /** {@code runs} timed runs each of two warm sessions on one sample, interleaved. */
    static Result repeated(OrtRunner fr, OrtRunner qr, Sample s, List<String> outs, int runs, Progress progress) {
        double[] f = new double[runs];
        double[] q = new double[runs];
        progress.start("latency", runs);
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            fr.run(s, outs);
            long t1 = System.nanoTime();
            qr.run(s, outs);
            long t2 = System.nanoTime();
            f[i] = (t1 - t0) / 1e6;
            q[i] = (t2 - t1) / 1e6;
            progress.step();
        }
        progress.finish();
        Report.Latency fl = stats(f);
        Report.Latency ql = stats(q);
        return new Result(s.id(), 1, runs, fl, ql, fl.medianMs() / ql.medianMs());
    }

    /** One run each per sample (already made, interleaved), in milliseconds; null without samples. */
    static Result perSample(double[] f, double[] q) {
        if (f.length == 0) {
            return null;
        }
        return new Result(null, f.length, f.length, stats(f), stats(q), Arrays.stream(f).sum() / Arrays.stream(q).sum());
    }

    static List<String> outputs(Model m) {
        List<String> outs = new ArrayList<>();
        m.graph().getOutputList().forEach(v -> outs.add(v.getName()));
        return outs;
    }

    static Report.Latency stats(double[] ms) {
        double[] s = ms.clone();
        Arrays.sort(s);
        return new Report.Latency(percentile(s, 0.5), percentile(s, 0.1), percentile(s, 0.9), s[0], s[s.length - 1]);
    }

    /** Linear interpolation between the closest ranks of a sorted array. */
    static double percentile(double[] sorted, double p) {
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
