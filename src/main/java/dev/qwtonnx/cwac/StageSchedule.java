package dev.qwtonnx.cwac;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Which layers compensation measures and folds together, and against which target: stages by depth (a
 * layer is measured on the model with every layer upstream of it already compensated), grouped into at
 * most {@link CwacOptions#stageCount()}, and within a stage the global target (the float model's
 * activation) for layers no other layer of the stage feeds, the local one for the rest. Pure functions of
 * the graph, shared by compensation, calibration's plan of the float activations to keep, and the weight
 * residuals made ahead.
 */
public final class StageSchedule {
    private StageSchedule() {
    }

    /**
     * Groups layers into stages: a layer's stage is one more than the latest stage of any quantized
     * layer upstream of it, so layers in one stage never feed each other.
     */
    static List<List<QdqLayer>> stages(Model quant, List<QdqLayer> layers) {
        return stages(quant.graph(), layers, QdqLayer::name);
    }

    /** As {@link #stages(Model, List)} for layers of any kind, named by {@code name}. */
    static <L> List<List<L>> stages(GraphProto g, List<L> layers, Function<L, String> name) {
        Map<String, L> byName = new HashMap<>();
        for (L l : layers) {
            byName.put(name.apply(l), l);
        }
        Map<String, Integer> depth = new HashMap<>();
        TreeMap<Integer, List<L>> stages = new TreeMap<>();
        for (NodeProto n : g.getNodeList()) {
            int d = 0;
            for (String in : n.getInputList()) {
                d = Math.max(d, depth.getOrDefault(in, 0));
            }
            L l = byName.get(n.getName());
            if (l != null) {
                d += 1;
                stages.computeIfAbsent(d, k -> new ArrayList<>()).add(l);
            }
            for (String out : n.getOutputList()) {
                depth.put(out, d);
            }
        }
        return new ArrayList<>(stages.values());
    }

    /** Consecutive stages joined into at most {@code most} (0: as they are), as evenly as they go. */
    static <L> List<List<L>> grouped(List<List<L>> stages, int most) {
        if (most == 0 || stages.size() <= most) {
            return stages;
        }
        List<List<L>> out = new ArrayList<>();
        for (int g = 0; g < most; g++) {
            List<L> joined = new ArrayList<>();
            for (int k = g * stages.size() / most; k < (g + 1) * stages.size() / most; k++) {
                joined.addAll(stages.get(k));
            }
            out.add(joined);
        }
        return out;
    }

    /** The layers of {@code stage} that read (through any path) the output of another layer of it. */
    static List<QdqLayer> fedByStage(Model quant, List<QdqLayer> stage) {
        return fedByStage(quant.graph(), stage, QdqLayer::name, QdqLayer::input);
    }

    /** As {@link #fedByStage(Model, List)} for layers of any kind, named by {@code name}, reading {@code input}. */
    static <L> List<L> fedByStage(GraphProto g, List<L> stage, Function<L, String> name, Function<L, String> input) {
        Map<String, L> byName = new HashMap<>();
        for (L l : stage) {
            byName.put(name.apply(l), l);
        }
        Set<String> downstream = new HashSet<>();
        List<L> fed = new ArrayList<>();
        for (NodeProto n : g.getNodeList()) {
            boolean reached = false;
            for (String in : n.getInputList()) {
                reached |= downstream.contains(in);
            }
            L l = byName.get(n.getName());
            if (l != null) {
                if (downstream.contains(input.apply(l))) {
                    fed.add(l);
                }
                reached = true;
            }
            if (reached) {
                downstream.addAll(n.getOutputList());
            }
        }
        return fed;
    }

    /**
     * The layers measured against the float model's activations (the global target) under
     * {@code options}: in each stage, those not fed by another layer of it (the rest are measured
     * against their local target, computed in the quantized model). Works on the float or the
     * quantized graph alike, Q/DQ pairs only lengthening the paths between layers; the calibration
     * pass keeps the float activations of these layers only.
     */
    public static <L> Set<String> globalTargets(GraphProto g, List<L> layers, Function<L, String> name,
            Function<L, String> input, CwacOptions options) {
        Set<String> out = new LinkedHashSet<>();
        if (options.method() == CwacOptions.Method.NONE || options.target() == CwacOptions.Target.LOCAL) {
            return out;
        }
        List<List<L>> stages = options.schedule() == CwacOptions.Schedule.PARALLEL ? List.of(layers)
                : grouped(stages(g, layers, name), options.stageCount());
        for (List<L> stage : stages) {
            Set<String> fed = new HashSet<>();
            fedByStage(g, stage, name, input).forEach(l -> fed.add(name.apply(l)));
            for (L l : stage) {
                if (!fed.contains(name.apply(l))) {
                    out.add(name.apply(l));
                }
            }
        }
        return out;
    }

    /**
     * The layers whose float activations compensation takes from the float model (the calibration
     * pass keeps them): the {@linkplain #globalTargets global targets} of layers some other layer
     * feeds. A layer no other feeds reads, in the quantized model, the quantization of the float
     * model's own activation (nothing upstream is quantized), so the measuring run computes its
     * target itself rather than have calibration keep those layers' outputs.
     */
    public static <L> Set<String> referenceTargets(GraphProto g, List<L> layers, Function<L, String> name,
            Function<L, String> input, CwacOptions options) {
        Set<String> out = globalTargets(g, layers, name, input, options);
        List<List<L>> depths = stages(g, layers, name);
        if (!depths.isEmpty()) {
            depths.get(0).forEach(l -> out.remove(name.apply(l)));
        }
        return out;
    }
}
