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
        double[] num = new double[outputs.size()];
        double[] den = new double[outputs.size()];
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
                    for (int k = 0; k < want.length; k++) {
                        double d = (double) have[k] - want[k];
                        num[o] += d * d;
                        den[o] += (double) want[k] * want[k];
                    }
                }
            }
        }
        double e = 0;
        for (int o = 0; o < num.length; o++) {
            e += den[o] > 0 ? num[o] / den[o] : num[o];
        }
        return e;
    }
}
