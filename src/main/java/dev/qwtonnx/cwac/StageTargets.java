package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.ort.OrtSessions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The graph a measuring run of compensation runs: the quantized model plus what gives each measured
 * layer's output in float (a QOperator layer's integer output dequantized) and its target in the same
 * run (the layer's rounding residual or a float copy of the layer for a local target; a float copy
 * reading the model's float input for a first layer's global target). Built only for measuring; never saved.
 */
final class StageTargets {
    /** JVM property: true measures every local target with a float copy of its layer (for comparing). */
    static final String FLOAT_COPIES = "qwt.cwac.floatCopies";

    private StageTargets() {
    }

    /**
     * What a measuring run fetches for {@code layers}: each one's measured output, and its target where the run
     * computes it.
     */
    static List<String> measuredTensors(List<QdqLayer> layers, Map<String, String> outputs,
            Map<String, InGraphTarget> inGraph) {
        List<String> out = new ArrayList<>();
        for (QdqLayer l : layers) {
            out.add(outputs.get(l.name()));
            if (inGraph.containsKey(l.name())) {
                out.add(inGraph.get(l.name()).tensor());
            }
        }
        return out;
    }

    /**
     * The model with each QOperator layer's integer output dequantized by an added
     * DequantizeLinear (only for measuring; never saved); {@code outputs} receives, per layer, the
     * float tensor to measure.
     */
    static Model dequantizedOutputs(Model m, List<QdqLayer> stage, Map<String, String> outputs) {
        GraphEditor g = null;
        for (QdqLayer l : stage) {
            if (!l.quantizedOutput()) {
                outputs.put(l.name(), l.output());
                continue;
            }
            g = g == null ? new GraphEditor(m.graph()) : g;
            outputs.put(l.name(), dequantized(g, l.output(), l.qlinear().yScale(), l.qlinear().yZeroPoint()));
        }
        return g == null ? m : m.withGraph(g.build());
    }

    /** Appends DequantizeLinear(tensor, scale, zeroPoint) and returns its output's name. */
    private static String dequantized(GraphEditor g, String tensor, String scale, String zeroPoint) {
        String out = g.names().fresh(tensor + "_measured");
        NodeProto.Builder dq = NodeProto.newBuilder().setOpType("DequantizeLinear")
                .setName(g.names().fresh(tensor + "_measured")).addInput(tensor).addInput(scale);
        if (zeroPoint != null && !zeroPoint.isEmpty()) {
            dq.addInput(zeroPoint);
        }
        g.append(dq.addOutput(out).build());
        return out;
    }

    /**
     * A target the measuring run computes: a tensor holding it, or (residual) one holding what the
     * layer's measured output lacks of it, (W − Ŵ)·x̂ (see {@link ResidualTarget}).
     */
    record InGraphTarget(String tensor, boolean residual) {
    }

    /**
     * The quantized model plus what gives, in the same run, the targets of the stage's layers: the
     * local targets of {@code local}, and the global targets of the others whose input is computed
     * in float all the way from the model's inputs (a first layer: the float model's activation is
     * then the tensor the quantized model quantizes, so a float copy of the layer reading it gives
     * the target without keeping the float model's activations from calibration). Global targets of
     * the remaining layers come from the float reference.
     */
    static Model withTargets(Model quant, Model floatModel, List<QdqLayer> stage, List<QdqLayer> local,
            Map<String, FloatLayer> floats, WeightResiduals ahead, Map<String, InGraphTarget> targets) {
        GraphEditor g = new GraphEditor(quant.graph());
        GraphEditor fg = new GraphEditor(floatModel.graph());
        addLocalTargets(g, fg, quant.serializedSize(), local, floats, ahead, targets);
        for (QdqLayer l : stage) {
            String x = local.contains(l) ? null : UnquantizedInputs.of(g, l);
            if (x != null) {
                targets.put(l.name(), new InGraphTarget(floatCopy(g, fg, floats.get(l.name()), x), false));
            }
        }
        return targets.isEmpty() ? quant : quant.withGraph(g.build());
    }

    /**
     * Adds to the quantized graph {@code g}, for each of {@code layers}, what gives its local target,
     * QwT's: the float layer applied to the quantized model's own (dequantized) input. Measured as
     * the layer's rounding residual (an integer kernel) where {@link ResidualTarget} can, else as a
     * float copy of the layer; a model of {@link OrtSessions#IN_MEMORY_FROM} or more ({@code bytes})
     * keeps the float copies, which reference the weights' mapped file, where residuals would be new
     * memory (a quarter of the weights'). Residuals computed {@code ahead} are used where they fit.
     * Only used for measuring; never saved.
     */
    private static void addLocalTargets(GraphEditor g, GraphEditor fg, long bytes, List<QdqLayer> layers,
            Map<String, FloatLayer> floats, WeightResiduals ahead, Map<String, InGraphTarget> targets) {
        Map<String, ResidualTarget.Residual> residuals = new ConcurrentHashMap<>();
        if (measuresResiduals(bytes)) {
            // Layer by layer in parallel: each reads its own weights and writes nothing shared. The graph's
            // producer index is built first, here, so that the workers only read it.
            g.producer("");
            layers.parallelStream().forEach(l -> {
                // Residuals made ahead are keyed by the planned layer: the float node.
                FloatLayer f = floats.get(l.name());
                ResidualTarget.Residual r = ResidualTarget.of(g, fg, l, f, ahead.of(f.node().getName()));
                if (r != null) {
                    residuals.put(l.name(), r);
                }
            });
        }
        for (QdqLayer l : layers) {
            ResidualTarget.Residual r = residuals.get(l.name());
            if (r != null) {
                targets.put(l.name(), new InGraphTarget(ResidualTarget.append(g, r), true));
                continue;
            }
            String input = l.qlinear() == null ? l.input()
                    : dequantized(g, l.input(), l.qlinear().xScale(), l.qlinear().xZeroPoint());
            targets.put(l.name(), new InGraphTarget(floatCopy(g, fg, floats.get(l.name()), input), false));
        }
    }

    /**
     * Whether local targets of a model of {@code bytes} (serialized) are measured as weight rounding
     * residuals: below {@link OrtSessions#IN_MEMORY_FROM}, and unless the JVM property
     * {@value #FLOAT_COPIES} asks for float copies.
     */
    static boolean measuresResiduals(long bytes) {
        return bytes < OrtSessions.IN_MEMORY_FROM && !Boolean.getBoolean(FLOAT_COPIES);
    }

    /**
     * Appends a float copy of the float layer {@code f} (its node and the nodes it absorbed, reading
     * copies of their float constants) reading {@code input}; returns the copy's output.
     */
    private static String floatCopy(GraphEditor g, GraphEditor fg, FloatLayer f, String input) {
        NodeProto fn = f.node();
        NodeProto.Builder clone = fn.toBuilder().clearInput().clearMetadataProps()
                .setName(g.names().fresh(fn.getName() + "_target"));
        clone.addInput(input);
        for (int i = 1; i < fn.getInputCount(); i++) {
            clone.addInput(floatConstant(g, fg, fn.getInput(i)));
        }
        String out = g.names().fresh(fn.getOutput(0) + "_target");
        g.append(clone.clearOutput().addOutput(out).build());
        String chain = fn.getOutput(0);
        for (NodeProto t : f.tail()) {
            // The absorbed node again, reading the clone's output and copies of its constants.
            NodeProto.Builder tc = t.toBuilder().clearInput().clearOutput().clearMetadataProps()
                    .setName(g.names().fresh(t.getName() + "_target"));
            for (String in : t.getInputList()) {
                tc.addInput(in.equals(chain) ? out : floatConstant(g, fg, in));
            }
            chain = t.getOutput(0);
            out = g.names().fresh(chain + "_target");
            g.append(tc.addOutput(out).build());
        }
        return out;
    }

    /** A copy, under a fresh name, of the float model's initializer {@code name}; other names as they are. */
    private static String floatConstant(GraphEditor g, GraphEditor fg, String name) {
        if (name.isEmpty() || !fg.isInitializer(name)) {
            return name;
        }
        String copy = g.names().fresh(name + "_float");
        g.putInitializer(fg.initializer(name).toBuilder().setName(copy).build());
        return copy;
    }
}
