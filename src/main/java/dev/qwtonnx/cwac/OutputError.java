package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's output error against the float model on a fixed set of samples: Σ over float outputs of
 * ‖y − y_float‖² / ‖y_float‖² (summed over the samples before dividing, so that one near-zero sample
 * cannot dominate). The float outputs are computed once and kept; what compensation's acceptance
 * compares candidate models by.
 */
final class OutputError {
    private final List<Sample> samples;
    private final List<String> outputs = new ArrayList<>();
    private final List<Map<String, float[]>> reference = new ArrayList<>();

    OutputError(Model floatModel, List<Sample> samples) {
        this.samples = List.copyOf(samples);
        for (ValueInfoProto v : floatModel.graph().getOutputList()) {
            outputs.add(v.getName());
        }
        try (OrtRunner f = new OrtRunner(floatModel, List.of())) {
            for (Sample s : this.samples) {
                Map<String, float[]> out = new LinkedHashMap<>();
                f.run(s, outputs).forEach((k, v) -> out.put(k, v.data()));
                reference.add(out);
            }
        }
    }

    int size() {
        return samples.size();
    }

    /** The relative squared output error of {@code model} (same inputs and output names as the float model). */
    double of(Model model) {
        return perSample(model).total();
    }

    /**
     * A model's error split by sample: sample i's part is Σ over outputs of ‖y_i − y_float,i‖² / Σ_j
     * ‖y_float,j‖² (the denominator over all samples, as in the total), so that the parts sum to
     * {@link #of} and two models' parts can be compared sample by sample; with each sample's cosine
     * between the model's and the float model's outputs (the mean over outputs), which a smaller
     * squared error alone does not promise (shrinking an output toward zero lowers the one and not
     * the other).
     */
    record Errors(double[] parts, double[] cosines) {
        double total() {
            double t = 0;
            for (double p : parts) {
                t += p;
            }
            return t;
        }
    }

    /** The output error of {@code model} by sample (see {@link Errors}). */
    Errors perSample(Model model) {
        double[][] num = new double[samples.size()][outputs.size()];
        double[] den = new double[outputs.size()];
        double[] cosines = new double[samples.size()];
        try (OrtRunner q = new OrtRunner(model, List.of())) {
            for (int i = 0; i < samples.size(); i++) {
                Map<String, FloatTensor> got = q.run(samples.get(i), outputs);
                for (int o = 0; o < outputs.size(); o++) {
                    float[] want = reference.get(i).get(outputs.get(o));
                    float[] have = got.get(outputs.get(o)).data();
                    if (want.length != have.length) {
                        throw new IllegalStateException("output " + outputs.get(o) + " has " + have.length
                                + " values, the float model's " + want.length);
                    }
                    double dot = 0;
                    double hh = 0;
                    double ww = 0;
                    for (int k = 0; k < want.length; k++) {
                        double d = (double) have[k] - want[k];
                        num[i][o] += d * d;
                        dot += (double) have[k] * want[k];
                        hh += (double) have[k] * have[k];
                        ww += (double) want[k] * want[k];
                    }
                    den[o] += ww;
                    cosines[i] += (hh > 0 && ww > 0 ? dot / Math.sqrt(hh * ww) : hh == ww ? 1 : 0) / outputs.size();
                }
            }
        }
        double[] parts = new double[samples.size()];
        for (int i = 0; i < parts.length; i++) {
            for (int o = 0; o < den.length; o++) {
                parts[i] += den[o] > 0 ? num[i][o] / den[o] : num[i][o];
            }
        }
        return new Errors(parts, cosines);
    }
}
