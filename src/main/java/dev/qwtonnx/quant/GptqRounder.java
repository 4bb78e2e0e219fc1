package dev.qwtonnx.quant;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Analysis before quantization: GPTQ-rounded weights for every planned layer with a 2-D weight
 * (MatMul, Gemm), from one pass of the float model over the calibration data. Conv layers are not
 * returned and keep round-to-nearest.
 */
public final class GptqRounder {
    private GptqRounder() {
    }

    public static Map<String, QuantizedWeight> round(Model floatModel, List<LayerPlan> layers, QuantOptions options,
            CalibrationSource data, Progress progress) {
        GraphEditor g = new GraphEditor(floatModel.graph());
        List<LayerPlan> eligible = new ArrayList<>();
        Set<String> inputs = new LinkedHashSet<>();
        for (LayerPlan l : layers) {
            if (l.kind() != LayerKind.CONV && Tensors.dims(g.initializer(l.weight())).length == 2) {
                eligible.add(l);
                inputs.add(l.input());
            }
        }
        if (eligible.isEmpty()) {
            return Map.of();
        }
        Map<String, InputMoments.Moments> moments = InputMoments.collect(floatModel, inputs, data, progress);
        Map<String, Gptq.Factor> factors = new HashMap<>();
        Map<String, QuantizedWeight> out = new LinkedHashMap<>();
        progress.start("GPTQ rounding", eligible.size());
        for (LayerPlan l : eligible) {
            TensorProto w = g.initializer(l.weight());
            InputMoments.Moments m = moments.get(l.input());
            long[] dims = Tensors.dims(w);
            if (dims[1 - l.weightAxis()] != m.k()) {
                progress.step(); // the input's last axis is not the weight's input axis: keep nearest
                continue;
            }
            Gptq.Factor f = factors.computeIfAbsent(l.input(), t -> Gptq.factor(m.h(), m.k()));
            out.put(l.name(), Gptq.quantize(Tensors.floats(w), dims, l.weightAxis(), f, options.weightQmax()));
            progress.step();
        }
        progress.finish();
        return out;
    }
}
