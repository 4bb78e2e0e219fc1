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
 * Latency of two models over N runs each with the same session options, interleaved (float, int8,
 * float, ...) so that machine load hits both alike, all on the data set's first sample so that the
 * spread is run-to-run variation, not differences between inputs; one warm-up run each first.
 */
public final class LatencyMeter {
    private LatencyMeter() {
    }

    /** Per-run milliseconds of each model. */
    public record Result(String sample, Report.Latency floatLatency, Report.Latency quantLatency) {
    }

    public static Result measure(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress) {
        List<String> outs = new ArrayList<>();
        floatModel.graph().getOutputList().forEach(v -> outs.add(v.getName()));
        double[] f = new double[runs];
        double[] q = new double[runs];
        try (OrtRunner fr = new OrtRunner(floatModel, List.of()); OrtRunner qr = new OrtRunner(quantModel, List.of())) {
            Sample s = data.iterator().next();
            fr.run(s, outs);
            qr.run(s, outs);
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
            return new Result(s.id(), stats(f), stats(q));
        }
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
