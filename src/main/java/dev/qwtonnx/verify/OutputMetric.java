package dev.qwtonnx.verify;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.FloatTensor;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How close a quantized model's outputs are to the float model's on one sample, higher is better.
 * The accuracy target averages it over the samples it measures on and compares the mean with a
 * minimum. An application gives its own (a CTC decode's text, say) through the API; the common
 * ones are here.
 */
public interface OutputMetric {
    /** A short name for messages: "SQNR of 'logits'", "top-1 agreement of 'probs'". */
    String name();

    /** One sample's score: {@code reference} are the float model's outputs, {@code quantized} the quantized model's. */
    double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized);

    /**
     * Gathers samples into the figure a target's minimum is compared with: the mean of their
     * {@link #score}s unless a metric says otherwise.
     */
    default Figure figure() {
        OutputMetric metric = this;
        return new Figure() {
            private double sum;
            private int n;

            @Override
            public void add(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                sum += metric.score(reference, quantized);
                n++;
            }

            @Override
            public double value() {
                return n == 0 ? Double.NaN : sum / n;
            }
        };
    }

    /** A metric's figure over samples, added one by one. */
    interface Figure {
        void add(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized);

        double value();

        /** A figure handing each sample's {@code output} of both models to {@code add}, read by {@code value}. */
        static Figure over(String output, java.util.function.BiConsumer<float[], float[]> add,
                java.util.function.DoubleSupplier value) {
            return new Figure() {
                @Override
                public void add(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                    add.accept(reference.get(output).data(), quantized.get(output).data());
                }

                @Override
                public double value() {
                    return value.getAsDouble();
                }
            };
        }
    }

    /**
     * How far {@code mean} is above {@code min}, in units comparable across metrics (the search keeps
     * the candidate whose smallest margin is largest): the plain difference unless a metric says otherwise.
     */
    default double margin(double mean, double min) {
        return mean - min;
    }

    /** How a mean prints in messages. */
    default String format(double value) {
        return String.format(Locale.ROOT, "%.4f", value);
    }

    /**
     * Signal-to-quantization-noise ratio of one output, in dB (capped at 200 dB); over samples, that of
     * their energies summed ({@link Fidelity.Energies}), as the summary's and the report's SQNR mean.
     */
    static OutputMetric sqnr(String output) {
        return new OutputMetric() {
            @Override
            public String name() {
                return "SQNR of '" + output + "'";
            }

            @Override
            public double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                return Fidelity.sqnrDb(reference.get(output).data(), quantized.get(output).data());
            }

            @Override
            public Figure figure() {
                Fidelity.Energies e = new Fidelity.Energies();
                return Figure.over(output, e::add, e::sqnrDb);
            }

            @Override
            public String format(double value) {
                return String.format(Locale.ROOT, "%.2f dB", value);
            }
        };
    }

    /** Cosine similarity of one output; its margin is in dB of (1 − cosine), like SQNR's. */
    static OutputMetric cosine(String output) {
        return new OutputMetric() {
            @Override
            public String name() {
                return "cosine of '" + output + "'";
            }

            @Override
            public double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                return Fidelity.cosine(reference.get(output).data(), quantized.get(output).data());
            }

            /** As the summary's cosine mean ({@link Fidelity.Cosines}: across samples for one-value outputs). */
            @Override
            public Figure figure() {
                Fidelity.Cosines c = new Fidelity.Cosines();
                return Figure.over(output, c::add, c::mean);
            }

            @Override
            public double margin(double mean, double min) {
                return 10 * Math.log10(Math.max(1e-12, 1 - min) / Math.max(1e-12, 1 - mean));
            }

            @Override
            public String format(double value) {
                return String.format(Locale.ROOT, "%.5f", value);
            }
        };
    }

    /** Share of rows (the last axis holds the classes) whose arg-max is the same in both outputs. */
    static OutputMetric top1(String output) {
        return new OutputMetric() {
            @Override
            public String name() {
                return "top-1 agreement of '" + output + "'";
            }

            @Override
            public double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                FloatTensor r = reference.get(output);
                float[] a = r.data();
                float[] b = quantized.get(output).data();
                int classes = r.shape().length == 0 ? a.length : (int) Math.max(1, r.shape()[r.shape().length - 1]);
                int rows = a.length / classes;
                int same = 0;
                for (int i = 0; i < rows; i++) {
                    same += Fidelity.argmax(a, i * classes, classes) == Fidelity.argmax(b, i * classes, classes) ? 1 : 0;
                }
                return rows == 0 ? 1 : (double) same / rows;
            }
        };
    }

    /**
     * Intersection over union of the two outputs thresholded at {@code threshold} (value &gt; threshold
     * is in the mask): a detector's probability map, say. Two empty masks agree fully.
     */
    static OutputMetric iou(String output, double threshold) {
        return new OutputMetric() {
            @Override
            public String name() {
                return String.format(Locale.ROOT, "IoU of '%s' > %s", output, threshold);
            }

            @Override
            public double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                float[] a = reference.get(output).data();
                float[] b = quantized.get(output).data();
                long inter = 0;
                long union = 0;
                for (int i = 0; i < a.length; i++) {
                    boolean x = a[i] > threshold;
                    boolean y = b[i] > threshold;
                    inter += x && y ? 1 : 0;
                    union += x || y ? 1 : 0;
                }
                return union == 0 ? 1 : (double) inter / union;
            }
        };
    }

    /**
     * The metric {@code --metric} names, on the model's float {@code outputs}: {@code sqnr} and
     * {@code cosine} one per output (every output must meet the minimum), {@code top1} and
     * {@code iou:THRESHOLD} on the first output.
     */
    static List<OutputMetric> parse(String spec, List<String> outputs) {
        String s = spec.trim().toLowerCase(Locale.ROOT);
        if (outputs.isEmpty()) {
            throw new QwtException("the model has no float output to measure --metric " + spec + " on");
        }
        if (s.equals("sqnr")) {
            return outputs.stream().map(OutputMetric::sqnr).toList();
        }
        if (s.equals("cosine")) {
            return outputs.stream().map(OutputMetric::cosine).toList();
        }
        if (s.equals("top1")) {
            return List.of(top1(outputs.get(0)));
        }
        if (s.startsWith("iou:")) {
            double t;
            try {
                t = Double.parseDouble(s.substring(4));
            } catch (NumberFormatException e) {
                throw new QwtException("--metric iou:THRESHOLD needs a number, got '" + spec + "'");
            }
            return List.of(iou(outputs.get(0), t));
        }
        throw new QwtException("--metric takes cosine, sqnr, top1 or iou:THRESHOLD, got '" + spec + "'");
    }

    /** Checks a --metric value before any work (the outputs are known only once the model is read). */
    static void check(String spec) {
        parse(spec, List.of("output"));
    }

}
