package dev.qwtonnx.calib;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Min/max calibration reduced inside the session: a ReduceMin and a ReduceMax of each tensor, so that
 * a run hands over two scalars instead of the whole activation. Copying every calibrated activation
 * out of ORT into the JVM's heap (tens of MB per sample on an OCR model) dominated the calibration
 * pass and, as garbage, made the heap grow to gigabytes; ORT's reductions are exact, so the ranges are
 * the same. The reductions live in the measuring model only, never in the output.
 */
public final class InGraphMinMax {
    /** The model with the reductions, and each tensor's two outputs: [min, max]. */
    public record Reduced(Model model, Map<String, List<String>> outputs) {
        /** The names a run fetches for the tensors: the two reductions of each. */
        public List<String> fetched() {
            return outputs.values().stream().flatMap(List::stream).toList();
        }
    }

    private InGraphMinMax() {
    }

    /** {@code model} with a ReduceMin and a ReduceMax (all axes, scalar result) of each of {@code tensors}. */
    public static Reduced attach(Model model, Collection<String> tensors) {
        if (tensors.isEmpty()) {
            return new Reduced(model, Map.of());
        }
        GraphEditor g = new GraphEditor(model.graph());
        Map<String, List<String>> outputs = new LinkedHashMap<>();
        for (String t : tensors) {
            String min = g.names().fresh(t + "_calib_min");
            String max = g.names().fresh(t + "_calib_max");
            g.append(Nodes.node("ReduceMin", g.names().fresh(t + "_calib_min"), List.of(t), List.of(min), "calibrate",
                    Nodes.intAttribute("keepdims", 0)));
            g.append(Nodes.node("ReduceMax", g.names().fresh(t + "_calib_max"), List.of(t), List.of(max), "calibrate",
                    Nodes.intAttribute("keepdims", 0)));
            outputs.put(t, List.of(min, max));
        }
        return new Reduced(model.withGraph(g.build()), outputs);
    }

    /**
     * Feeds one run's reductions of a tensor to its observer: the pair (min, max) observed as two
     * values, which gives a min/max observer the same range as the whole tensor would. A pair that is
     * not ordered (an empty tensor reduces to +inf/-inf; NaN) is not observed.
     */
    static void observe(RangeObserver o, FloatTensor min, FloatTensor max) {
        float lo = min.data()[0];
        float hi = max.data()[0];
        if (lo <= hi) {
            o.observe(new float[] {lo, hi});
        }
    }
}
