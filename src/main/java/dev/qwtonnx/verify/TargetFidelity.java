package dev.qwtonnx.verify;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Measures quantized versions of one float model against an accuracy target: the float outputs of
 * the samples are computed once, then each candidate model is run on the same samples and every
 * bound's metric averaged. Holds the float outputs of all samples, so it is meant for the few
 * samples a search measures on.
 */
public final class TargetFidelity {
    /** One metric and the mean it must reach. */
    public record Bound(OutputMetric metric, double min) {
        @Override
        public String toString() {
            return metric.name() + " >= " + metric.format(min);
        }
    }

    /** Each bound's figure ({@link OutputMetric#figure}), in the bounds' order, on one candidate model. */
    public record Figures(List<Bound> bounds, double[] values) {
        /** The smallest margin over the bounds: positive when every bound holds (see {@link OutputMetric#margin}). */
        public double margin() {
            double m = Double.POSITIVE_INFINITY;
            for (int i = 0; i < values.length; i++) {
                m = Math.min(m, bounds.get(i).metric().margin(values[i], bounds.get(i).min()));
            }
            return m;
        }

        public boolean met() {
            for (int i = 0; i < values.length; i++) {
                if (!(values[i] >= bounds.get(i).min())) {
                    return false;
                }
            }
            return true;
        }

        /** The bound furthest from holding. */
        public int worst() {
            int w = 0;
            for (int i = 1; i < values.length; i++) {
                if (bounds.get(i).metric().margin(values[i], bounds.get(i).min())
                        < bounds.get(w).metric().margin(values[w], bounds.get(w).min())) {
                    w = i;
                }
            }
            return w;
        }

        /** "SQNR of 'y' 14.02 dB" for the worst bound, with how far short of its minimum it is when it fails. */
        public String describeWorst() {
            int w = worst();
            Bound b = bounds.get(w);
            String s = b.metric().name() + " " + b.metric().format(values[w]);
            return values[w] >= b.min() ? s : s + String.format(Locale.ROOT, " < %s (short by %s)",
                    b.metric().format(b.min()), b.metric().format(b.min() - values[w]));
        }
    }

    private final List<Sample> samples = new ArrayList<>();
    private final List<Map<String, FloatTensor>> reference = new ArrayList<>();
    private final List<String> outputs;
    /** The measured tensors that are not graph outputs, which each session exposes. */
    private final List<String> exposed;

    /** Runs {@code floatModel} once on {@code data}. */
    public TargetFidelity(Model floatModel, CalibrationSource data) {
        this.outputs = floatOutputs(floatModel);
        this.exposed = dev.qwtonnx.model.MeasuredOutputs.beyondGraphOutputs(floatModel);
        try (OrtRunner f = new OrtRunner(floatModel, exposed)) {
            for (Sample s : data) {
                samples.add(s);
                reference.add(f.run(s, outputs));
            }
        }
    }

    /**
     * The model's float outputs, which the built-in metrics measure; where it has none, the float tensors its
     * outputs are computed from ({@link dev.qwtonnx.model.MeasuredOutputs}).
     */
    public static List<String> floatOutputs(Model m) {
        return dev.qwtonnx.model.MeasuredOutputs.of(m);
    }

    public int samples() {
        return samples.size();
    }

    /** Every bound's figure ({@link OutputMetric#figure}: the mean of its scores unless it says otherwise) on {@code quantized}. */
    public Figures measure(Model quantized, List<Bound> bounds) {
        List<OutputMetric.Figure> figures = bounds.stream().map(b -> b.metric().figure()).toList();
        try (OrtRunner q = new OrtRunner(quantized, exposed)) {
            for (int i = 0; i < samples.size(); i++) {
                Map<String, FloatTensor> y = q.run(samples.get(i), outputs);
                for (OutputMetric.Figure f : figures) {
                    f.add(reference.get(i), y);
                }
            }
        }
        double[] values = new double[bounds.size()];
        for (int b = 0; b < values.length; b++) {
            values[b] = figures.get(b).value();
        }
        return new Figures(List.copyOf(bounds), values);
    }
}
