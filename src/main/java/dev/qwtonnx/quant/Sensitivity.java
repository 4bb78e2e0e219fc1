package dev.qwtonnx.quant;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Per-layer sensitivity: the relative error of the model's outputs, ‖y − y_float‖² / ‖y_float‖²
 * summed over the given samples, when that layer alone is quantized (with the run's ranges and
 * weights) and every other layer stays float. One quantized model per layer; used to choose the
 * layers a float budget keeps in float.
 */
public final class Sensitivity {
    private Sensitivity() {
    }

    public record LayerError(String layer, double relativeError) {
    }

    /** Layers sorted by decreasing relative output error. */
    public static List<LayerError> rank(Model floatModel, List<LayerPlan> layers, Map<String, Range> ranges,
            Map<String, QuantizedWeight> rounded, QuantOptions options, List<Sample> samples, Progress progress) {
        List<String> outputs = new ArrayList<>();
        for (ValueInfoProto v : floatModel.graph().getOutputList()) {
            outputs.add(v.getName());
        }
        List<Map<String, FloatTensor>> reference = new ArrayList<>();
        double energy = 0;
        try (OrtRunner f = session(floatModel, samples.size())) {
            for (Sample s : samples) {
                Map<String, FloatTensor> y = f.run(s, outputs);
                reference.add(y);
                for (FloatTensor t : y.values()) {
                    for (float v : t.data()) {
                        energy += (double) v * v;
                    }
                }
            }
        }
        List<LayerError> out = new ArrayList<>();
        progress.start("layer sensitivity", layers.size());
        for (LayerPlan l : layers) {
            Model one = new QdqQuantizer(options, List.of(l), ranges, rounded).run(floatModel).model();
            double err = 0;
            try (OrtRunner q = session(one, samples.size())) {
                for (int i = 0; i < samples.size(); i++) {
                    Map<String, FloatTensor> y = q.run(samples.get(i), outputs);
                    for (String o : outputs) {
                        float[] a = y.get(o).data();
                        float[] b = reference.get(i).get(o).data();
                        for (int k = 0; k < a.length; k++) {
                            double d = (double) a[k] - b[k];
                            err += d * d;
                        }
                    }
                }
            }
            out.add(new LayerError(l.name(), energy > 0 ? err / energy : err));
            progress.step();
        }
        progress.finish();
        out.sort(Comparator.comparingDouble((LayerError e) -> -e.relativeError()).thenComparing(LayerError::layer));
        return out;
    }

    /**
     * A session for {@code runs} runs, dropped after them. Over a few (the poor-fidelity hint's 4) a session without
     * weight prepacking starts sooner than prepacking saves in its runs, with the same figures; over 16 (a float
     * budget, an accuracy target) prepacking pays ({@link OrtRunner#FEW_RUNS}).
     */
    private static OrtRunner session(Model model, int runs) {
        return runs <= OrtRunner.FEW_RUNS ? OrtRunner.forFewRuns(model, List.of()) : new OrtRunner(model, List.of());
    }
}
