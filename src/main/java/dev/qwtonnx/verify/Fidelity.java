package dev.qwtonnx.verify;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.MeasuredOutputs;
import dev.qwtonnx.model.Model;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Output fidelity of a quantized model against its float original, over held-out samples. */
public final class Fidelity {
    private Fidelity() {
    }

    /**
     * Per-output figures: cosine similarity and SQNR (dB) per sample, summarised as mean and worst
     * (with the worst sample's id, by SQNR; SQNR's "mean" is that of all samples' values together, see
     * {@link Energies}; for an output of one value per sample both cosines are that of the samples' values
     * together, see {@link Cosines}); max and mean absolute error over all values; top-1 and
     * top-5 agreement where the output looks like class scores (rank 2, more than one class; top-5
     * needs more than five).
     */
    public record OutputFidelity(String output, int samples, double meanCosine, double minCosine, double meanSqnrDb,
            double minSqnrDb, String worstSample, double maxAbsError, double meanAbsError, Double top1Agreement,
            Double top5Agreement) {
        @Override
        public String toString() {
            String s = String.format("%s: cosine mean %.5f min %.5f, SQNR mean %.2f dB min %.2f dB, max |err| %.4g",
                    output, meanCosine, minCosine, meanSqnrDb, minSqnrDb, maxAbsError);
            return top1Agreement == null ? s : s + String.format(", top-1 agreement %.4f", top1Agreement);
        }
    }

    /** Fewest samples whose one run each gives the latency; with fewer, the first sample is run this often. */
    static final int MIN_TIMED_SAMPLES = 3;

    /**
     * The output figures of a pass and, where asked, both models' latency from the same sessions; the float model's
     * runs where the pass was asked to keep them (null otherwise).
     */
    public record Timed(List<OutputFidelity> outputs, LatencyMeter.Result latency, FloatRuns floatRuns) {
    }

    /**
     * The float model's outputs on each sample of a pass, in the pass's order, and each run's milliseconds: what a
     * second pass against the same float model on the same samples reads instead of running the float model again.
     */
    public record FloatRuns(List<Map<String, FloatTensor>> outputs, double[] ms) {
        /** Bytes of the outputs' values. */
        public long bytes() {
            long bytes = 0;
            for (Map<String, FloatTensor> o : outputs) {
                bytes += FloatTensor.bytes(o);
            }
            return bytes;
        }
    }

    /**
     * The float model's outputs on every sample of {@code data}, run one sample at a time in {@code runner} (a session
     * of {@code floatModel} that may expose more), the runs timed; null where they would hold more than
     * {@code maxBytes}, at the first sample that goes over.
     */
    public static FloatRuns floatRuns(OrtRunner runner, Model floatModel, CalibrationSource data, long maxBytes) {
        List<String> outs = TargetFidelity.floatOutputs(floatModel);
        if (!runner.outputNames().containsAll(outs)) {
            return null; // tensors the session does not expose (a model measured on what its outputs come from)
        }
        List<Map<String, FloatTensor>> outputs = new ArrayList<>();
        double[] ms = new double[data.size()];
        long bytes = 0;
        for (Sample s : data) {
            if (outputs.size() >= ms.length) {
                break; // a source's size is what it says, but never read past
            }
            long t0 = System.nanoTime();
            Map<String, FloatTensor> f = runner.run(s, outs);
            ms[outputs.size()] = (System.nanoTime() - t0) / 1e6;
            bytes += FloatTensor.bytes(f);
            if (bytes > maxBytes) {
                return null;
            }
            outputs.add(f);
        }
        return outputs.size() == ms.length ? new FloatRuns(List.copyOf(outputs), ms) : null;
    }

    public static List<OutputFidelity> measure(Model floatModel, Model quantModel, CalibrationSource data,
            Progress progress) {
        return measure(floatModel, quantModel, data, -1, progress, false).outputs();
    }

    /**
     * As {@link #measure(Model, Model, CalibrationSource, Progress)}, with the quantized model's Q/DQ
     * pairs run as written ({@link OrtRunner#of}): the fidelity of the quantization grid, the same
     * on every CPU, rather than of the integer kernels this machine's ORT fuses them into (which on x86
     * without VNNI saturate for full-range 8-bit weights).
     */
    public static List<OutputFidelity> measureOnGrid(Model floatModel, Model quantModel, CalibrationSource data,
            Progress progress) {
        return measure(floatModel, quantModel, data, -1, progress, true).outputs();
    }

    /**
     * As {@link #measure(Model, Model, CalibrationSource, Progress)}, timing the pass too: with {@code runs}
     * 0, every sample's run of each model after the first sample's (whose runs warm the sessions up),
     * or {@link #MIN_TIMED_SAMPLES} runs on the first sample when the pass has fewer others; with more,
     * {@code runs} further runs each on the first sample once the pass is done. The pass
     * runs both models anyway, so its latency costs no session and no run of its own.
     */
    public static Timed measureTimed(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress) {
        return measureTimed(floatModel, quantModel, data, runs, progress, null, 0);
    }

    /**
     * As {@link #measureTimed(Model, Model, CalibrationSource, int, Progress)}, with the float model's runs read
     * from {@code known} (an earlier pass of the same float model over the same samples; null, or one of another
     * length: run here) and, where {@code keepBytes} is positive, this pass's float runs kept in the result while
     * their outputs hold at most that many bytes. With known runs, the float side of the latency is their times,
     * taken beside the earlier pass's quantized runs.
     */
    public static Timed measureTimed(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress, FloatRuns known, long keepBytes) {
        return measure(floatModel, quantModel, data, Math.max(0, runs), progress, false,
                known != null && known.outputs().size() == data.size() ? known : null, keepBytes);
    }

    /**
     * As {@link #measureTimed(Model, Model, CalibrationSource, int, Progress, FloatRuns, long)} where no latency is
     * asked for (a run without a report): nothing timed, the sessions made as for a pass.
     */
    public static Timed measureUntimed(Model floatModel, Model quantModel, CalibrationSource data, Progress progress,
            FloatRuns known, long keepBytes) {
        return measure(floatModel, quantModel, data, -1, progress, false,
                known != null && known.outputs().size() == data.size() ? known : null, keepBytes);
    }

    private static Timed measure(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress, boolean onGrid) {
        return measure(floatModel, quantModel, data, runs, progress, onGrid, null, 0);
    }

    private static Timed measure(Model floatModel, Model quantModel, CalibrationSource data, int runs,
            Progress progress, boolean onGrid, FloatRuns known, long keepBytes) {
        List<String> outs = TargetFidelity.floatOutputs(floatModel);
        Sums sums = new Sums(outs);
        double[] fMs = new double[Math.max(0, data.size() - 1)];
        double[] qMs = new double[fMs.length];
        LatencyMeter.Result latency = null;
        List<Map<String, FloatTensor>> kept = keepBytes > 0 && known == null ? new ArrayList<>() : null;
        double[] keptMs = kept == null ? null : new double[data.size()];
        long keptBytes = 0;
        // Sessions as a user's only where their runs are timed; else as a pass's (no threads spinning between runs,
        // weights unpacked for a few runs), both alike.
        boolean timedPass = runs >= 0;
        // A model without float outputs is measured on the float tensors they come from, which its sessions expose.
        List<String> exposed = MeasuredOutputs.beyondGraphOutputs(floatModel);
        OrtRunner fr = known != null ? null
                : timedPass ? new OrtRunner(floatModel, exposed) : OrtRunner.forPasses(floatModel, exposed, data.size(), false);
        try (OrtRunner qr = timedPass ? OrtRunner.of(quantModel, exposed, false, onGrid)
                : OrtRunner.forPasses(quantModel, exposed, data.size(), onGrid)) {
            progress.start("verify", data.size());
            Sample first = null;
            for (Sample s : data) {
                int i = sums.n;
                if (known != null && i >= known.outputs().size()) {
                    break; // a source's size is what it says, but never read past
                }
                long t0 = System.nanoTime();
                Map<String, FloatTensor> f = known != null ? known.outputs().get(i) : fr.run(s, outs);
                long t1 = System.nanoTime();
                Map<String, FloatTensor> q = qr.run(s, outs);
                long t2 = System.nanoTime();
                double floatMs = known != null ? known.ms()[i] : (t1 - t0) / 1e6;
                if (i == 0) {
                    first = s;
                } else if (i - 1 < fMs.length) {
                    fMs[i - 1] = floatMs;
                    qMs[i - 1] = (t2 - t1) / 1e6;
                }
                if (kept != null && i < keptMs.length) {
                    keptBytes += FloatTensor.bytes(f);
                    if (keptBytes <= keepBytes) {
                        kept.add(f);
                        keptMs[i] = floatMs;
                    } else {
                        kept = null;
                    }
                }
                sums.add(s.id(), f, q);
                progress.step();
            }
            progress.finish();
            int timed = Math.min(sums.n - 1, fMs.length); // a source's size is what it says, but never read past
            if (runs == 0 && timed >= MIN_TIMED_SAMPLES) {
                latency = LatencyMeter.perSample(java.util.Arrays.copyOf(fMs, timed), java.util.Arrays.copyOf(qMs, timed));
            } else if (runs >= 0 && first != null) {
                if (fr == null) {
                    fr = new OrtRunner(floatModel, exposed);
                }
                latency = LatencyMeter.repeated(fr, qr, first, outs, runs > 0 ? runs : MIN_TIMED_SAMPLES, progress);
            }
        } finally {
            if (fr != null) {
                fr.close();
            }
        }
        FloatRuns runsKept = kept != null && kept.size() == data.size() ? new FloatRuns(List.copyOf(kept), keptMs) : null;
        return new Timed(sums.result(), latency, runsKept);
    }

    /**
     * The output fidelity of each of {@code quantModels} to {@code floatModel} on {@code data}, as
     * {@link #measure(Model, Model, CalibrationSource, Progress)} gives it for each, from one pass: the
     * float model runs once per sample for all of them (compensate's input and result).
     */
    public static List<List<OutputFidelity>> measureEach(Model floatModel, List<Model> quantModels,
            CalibrationSource data, Progress progress) {
        List<String> outs = TargetFidelity.floatOutputs(floatModel);
        List<Sums> sums = new ArrayList<>();
        List<OrtRunner> runners = new ArrayList<>();
        // Nothing is timed: sessions as measure's untimed pass makes them.
        List<String> exposed = MeasuredOutputs.beyondGraphOutputs(floatModel);
        try (OrtRunner fr = OrtRunner.forPasses(floatModel, exposed, data.size(), false)) {
            for (Model q : quantModels) {
                runners.add(OrtRunner.forPasses(q, exposed, data.size(), false));
                sums.add(new Sums(outs));
            }
            progress.start("verify", data.size());
            for (Sample s : data) {
                Map<String, FloatTensor> f = fr.run(s, outs);
                for (int j = 0; j < runners.size(); j++) {
                    sums.get(j).add(s.id(), f, runners.get(j).run(s, outs));
                }
                progress.step();
            }
            progress.finish();
        } finally {
            runners.forEach(OrtRunner::close);
        }
        return sums.stream().map(Sums::result).toList();
    }

    /**
     * One quantized model's sums over a pass, output by output: what {@link #measure} and
     * {@link #measureEach} summarise, and what a run on another runtime is summarised by.
     */
    public static final class Sums {
        private final List<String> outs;
        private final int k;
        private final Cosines[] cosines;
        private final Energies[] energies;
        private final double[] sqnrMin;
        private final double[] maxAbs;
        private final double[] absSum;
        private final long[] values;
        private final String[] worst;
        private final long[] top1Agree;
        private final long[] top5Agree;
        private final long[] top1Rows;
        private final List<long[]> f0Shapes = new ArrayList<>();
        private int n;

        public Sums(List<String> outs) {
            this.outs = outs;
            k = outs.size();
            cosines = new Cosines[k];
            java.util.Arrays.setAll(cosines, i -> new Cosines());
            energies = new Energies[k];
            java.util.Arrays.setAll(energies, i -> new Energies());
            sqnrMin = new double[k];
            maxAbs = new double[k];
            absSum = new double[k];
            values = new long[k];
            worst = new String[k];
            top1Agree = new long[k];
            top5Agree = new long[k];
            top1Rows = new long[k];
            java.util.Arrays.fill(sqnrMin, Double.POSITIVE_INFINITY);
        }

        /** Adds one sample's outputs: {@code f} the float model's, {@code q} the quantized model's. */
        public void add(String sampleId, Map<String, FloatTensor> f, Map<String, FloatTensor> q) {
            for (int i = 0; i < k; i++) {
                float[] a = f.get(outs.get(i)).data();
                float[] b = q.get(outs.get(i)).data();
                if (a.length != b.length) {
                    throw new QwtException("output '" + outs.get(i) + "' of sample " + sampleId + " has " + b.length
                            + " values, the float model's " + a.length);
                }
                cosines[i].add(a, b);
                double sqnr = energies[i].add(a, b);
                // A sample whose float output is all zeros (a wake-word score that underflowed on other speech) has
                // no signal to measure its error against: its own SQNR, -200 dB at any error, would always be the
                // worst sample's. Its error counts in the mean and in max |err|; the worst is found among the others.
                if (worst[i] == null) {
                    worst[i] = sampleId;
                }
                if (sqnr < sqnrMin[i] && !allZero(a)) {
                    worst[i] = sampleId;
                    sqnrMin[i] = sqnr;
                }
                for (int j = 0; j < a.length; j++) {
                    double e = Math.abs(a[j] - b[j]);
                    maxAbs[i] = Math.max(maxAbs[i], e);
                    absSum[i] += e;
                }
                values[i] += a.length;
                long[] shape = f.get(outs.get(i)).shape();
                if (f0Shapes.size() <= i) {
                    f0Shapes.add(shape);
                }
                if (shape.length == 2 && shape[1] > 1) {
                    int cls = (int) shape[1];
                    for (int r = 0; r < shape[0]; r++) {
                        top1Rows[i]++;
                        int best = argmax(b, r * cls, cls);
                        if (argmax(a, r * cls, cls) == best) {
                            top1Agree[i]++;
                        }
                        if (cls > 5 && topK(a, r * cls, cls, 5).contains(best)) {
                            top5Agree[i]++;
                        }
                    }
                }
            }
            n++;
        }

        public List<OutputFidelity> result() {
            List<OutputFidelity> result = new ArrayList<>();
            for (int i = 0; i < k; i++) {
                boolean top5 = top1Rows[i] > 0 && classes(f0Shapes.get(i)) > 5;
                result.add(new OutputFidelity(outs.get(i), n, cosines[i].mean(), cosines[i].min(),
                        energies[i].sqnrDb(), sqnrMin[i] == Double.POSITIVE_INFINITY ? energies[i].sqnrDb() : sqnrMin[i],
                        worst[i], maxAbs[i],
                        values[i] == 0 ? Double.NaN : absSum[i] / values[i],
                        top1Rows[i] == 0 ? null : (double) top1Agree[i] / top1Rows[i],
                        top5 ? (double) top5Agree[i] / top1Rows[i] : null));
            }
            return result;
        }
    }

    public static double cosine(float[] a, float[] b) {
        return cosine(FloatBuffer.wrap(a), b);
    }

    /** As {@link #cosine(float[], float[])}, reading {@code a} where it is (a mapped weight, say). */
    public static double cosine(FloatBuffer a, float[] b) {
        return cosine(a, a.limit(), i -> b[i]);
    }

    /** As {@link #cosine(float[], float[])}, over the first {@code n} values of {@code a} and of {@code b}. */
    public static double cosine(FloatBuffer a, int n, java.util.function.IntToDoubleFunction b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < n; i++) {
            double x = a.get(i);
            double y = b.applyAsDouble(i);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        return cosine(ab, aa, bb);
    }

    /** The cosine of two vectors from their dot product and squared norms: 1 for two zero vectors, 0 for one. */
    private static double cosine(double ab, double aa, double bb) {
        if (aa == 0 && bb == 0) {
            return 1;
        }
        return aa == 0 || bb == 0 ? 0 : ab / Math.sqrt(aa * bb);
    }

    /** Signal-to-quantization-noise ratio in dB; capped at 200 dB for identical tensors. */
    public static double sqnrDb(float[] ref, float[] test) {
        return new Energies().add(ref, test);
    }

    /**
     * The SQNR of a set of samples: the float outputs' energy (sum of squares) over the error's, both summed
     * over the samples, in dB, as if the samples' values were one tensor. A mean of each sample's decibels
     * lets one exact sample (capped at 200 dB: a saturated softmax, a one-value output that rounds back to
     * itself) lift the figure by 200/n dB whatever the others read, and a mean of their error ratios lets
     * one sample of almost no signal (a page without text, a silent clip) sink it; the energies weigh
     * each sample by what it holds. Samples all alike read the same either way.
     */
    public static final class Energies {
        private double signal;
        private double noise;
        private int samples;

        /** Adds one sample's output and returns that sample's own SQNR ({@link #sqnrDb(float[], float[])}). */
        public double add(float[] ref, float[] test) {
            double sig = 0;
            double err = 0;
            for (int i = 0; i < ref.length; i++) {
                sig += (double) ref[i] * ref[i];
                double d = (double) ref[i] - test[i];
                err += d * d;
            }
            return add(sig, err);
        }

        /** Adds one sample's energies (its output's sum of squares, its error's) and returns that sample's SQNR. */
        public double add(double signalEnergy, double errorEnergy) {
            signal += signalEnergy;
            noise += errorEnergy;
            samples++;
            return Fidelity.sqnrDb(signalEnergy, errorEnergy);
        }

        /** The SQNR of the samples added so far (NaN before any). */
        public double sqnrDb() {
            return samples == 0 ? Double.NaN : Fidelity.sqnrDb(signal, noise);
        }
    }

    /**
     * The cosine of a set of samples: the mean and the worst of each sample's, except for an output of one value
     * per sample (a voice-activity probability, a score), whose per-sample cosine is 1 whenever the two values
     * have the same sign; there both are the cosine of the samples' values taken as one vector, which moves
     * with the error.
     */
    public static final class Cosines {
        private double sum;
        private double min = Double.POSITIVE_INFINITY;
        private double ab;
        private double aa;
        private double bb;
        private int samples;
        private boolean oneValue = true;

        /** Adds one sample's output and returns that sample's own cosine ({@link #cosine(float[], float[])}). */
        public double add(float[] ref, float[] test) {
            double c = cosine(ref, test);
            sum += c;
            min = Math.min(min, c);
            oneValue &= ref.length == 1;
            if (ref.length == 1) {
                ab += (double) ref[0] * test[0];
                aa += (double) ref[0] * ref[0];
                bb += (double) test[0] * test[0];
            }
            samples++;
            return c;
        }

        /** The mean cosine (NaN before any sample). */
        public double mean() {
            if (samples == 0) {
                return Double.NaN;
            }
            return oneValue ? cosine(ab, aa, bb) : sum / samples;
        }

        /** The worst sample's cosine (the samples' vector's for one-value outputs; +∞ before any sample). */
        public double min() {
            return samples > 0 && oneValue ? cosine(ab, aa, bb) : min;
        }
    }

    /**
     * SQNR in dB of a signal and an error of these energies (sums of squares), within ±200 dB: 200 for no error,
     * -200 for an error on no signal (a finite figure, which JSON and the summary can hold).
     */
    static double sqnrDb(double signal, double noise) {
        if (noise == 0) {
            return 200;
        }
        return Math.max(-200, Math.min(200, 10 * Math.log10(signal / noise)));
    }

    private static boolean allZero(float[] a) {
        for (float v : a) {
            if (v != 0) {
                return false;
            }
        }
        return true;
    }

    private static long classes(long[] shape) {
        return shape.length == 2 ? shape[1] : 0;
    }

    /** The indices of the k largest values (the "top-5" of class scores). */
    static java.util.Set<Integer> topK(float[] v, int off, int len, int k) {
        Integer[] idx = new Integer[len];
        for (int i = 0; i < len; i++) {
            idx[i] = i;
        }
        java.util.Arrays.sort(idx, (x, y) -> Float.compare(v[off + y], v[off + x]));
        return new java.util.HashSet<>(java.util.Arrays.asList(idx).subList(0, Math.min(k, len)));
    }

    /** The index of the largest of {@code v[off..off+len)}, the first on a tie. */
    static int argmax(float[] v, int off, int len) {
        int best = 0;
        for (int i = 1; i < len; i++) {
            if (v[off + i] > v[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
