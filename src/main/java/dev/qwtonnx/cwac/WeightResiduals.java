package dev.qwtonnx.cwac;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.QuantizedWeight;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Layers' weight-rounding residuals ({@link ResidualTarget}) computed ahead of compensation: they
 * depend on the float weights and their roundings alone, not on the calibrated ranges, so they can
 * be computed while calibration runs, off compensation's own time. The compensator uses one only
 * if it was taken against the weight the quantized graph holds.
 */
public final class WeightResiduals {
    /** None ahead: the compensator computes the residuals it measures with. */
    public static final WeightResiduals NONE = new WeightResiduals(Map.of());

    private final Map<String, Supplier<ResidualTarget.WeightResidual>> byLayer;

    private WeightResiduals(Map<String, Supplier<ResidualTarget.WeightResidual>> byLayer) {
        this.byLayer = byLayer;
    }

    /**
     * Submits to {@code ahead} the residual of each of {@code layers} that compensation under
     * {@code options} will measure against its local target (none where it would measure with float
     * copies), from its float weight in {@code prepared} and its rounding in {@code rounded} (a
     * layer without one is left to the compensator).
     */
    public static WeightResiduals ahead(Model prepared, List<LayerPlan> layers,
            Map<String, Supplier<QuantizedWeight>> rounded, CwacOptions options, AheadTasks ahead) {
        if (options.method() == CwacOptions.Method.NONE || !StageTargets.measuresResiduals(prepared.serializedSize())) {
            return NONE;
        }
        Set<String> global = StageSchedule.globalTargets(prepared.graph(), layers, LayerPlan::name, LayerPlan::input,
                options);
        Map<String, TensorProto> initializers = new HashMap<>();
        for (TensorProto t : prepared.graph().getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        Map<String, Supplier<ResidualTarget.WeightResidual>> out = new HashMap<>();
        for (LayerPlan l : layers) {
            Supplier<QuantizedWeight> rounding = rounded.get(l.name());
            TensorProto w = initializers.get(l.weight());
            if (global.contains(l.name()) || rounding == null || w == null || w.getDataType() != DataType.FLOAT.code
                    || Tensors.isExternal(w)) {
                continue;
            }
            out.put(l.name(), ahead.submit(() -> {
                QuantizedWeight q = rounding.get();
                try {
                    return q == null ? null
                            : ResidualTarget.of(Tensors.floatView(w), Tensors.dims(w), l.weightAxis(), q);
                } catch (RuntimeException e) {
                    return null; // the compensator computes it again from the graph and reports what is wrong
                }
            }));
        }
        return new WeightResiduals(Map.copyOf(out));
    }

    /** The residual of {@code layer}'s weight computed ahead, or null. */
    Supplier<ResidualTarget.WeightResidual> of(String layer) {
        return byLayer.get(layer);
    }
}
