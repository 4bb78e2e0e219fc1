package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Channel-wise affine compensation as an analysis plus a fold: measures each quantized layer's
 * output against its target over the calibration data, fits yf ≈ a·yq + b per channel, and folds
 * the fit with {@link CwacFold}. The float model pairs with the quantized one through node names
 * (our own output), or through a mapping given by the caller ({@link ForeignLayers} for a model
 * quantized by another tool).
 */
public final class Compensator {
    private final CwacOptions options;
    private final int maxBatch;

    /** Measuring one sample per run. */
    public Compensator(CwacOptions options) {
        this(options, 1);
    }

    /**
     * Measuring up to {@code maxBatch} samples of equal shapes per run where the model's first
     * dimensions are dynamic (the calibration's batching: the same batches, so activations kept
     * from calibration are found again).
     */
    public Compensator(CwacOptions options, int maxBatch) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, got " + maxBatch);
        }
        this.options = options;
        this.maxBatch = maxBatch;
    }

    /** The compensated model, the fits by layer name, and the layers that were left alone. */
    public record Result(Model model, List<QdqLayer> layers, Map<String, FloatLayer> floatLayers,
            Map<String, ChannelFit> fits, List<String> skipped) {
        public double sseBefore() {
            return fits.values().stream().mapToDouble(ChannelFit::sseBefore).sum();
        }

        public double sseAfter() {
            return fits.values().stream().mapToDouble(ChannelFit::sseAfter).sum();
        }
    }

    public Result compensate(Model floatModel, Model quantModel, CalibrationSource data, Progress progress) {
        return compensate(floatModel, quantModel, data, progress, null);
    }

    /**
     * As {@link #compensate(Model, Model, CalibrationSource, Progress)}, comparing with the float
     * activations of {@code reference} where it has them (null: a reference of its own).
     */
    public Result compensate(Model floatModel, Model quantModel, CalibrationSource data, Progress progress,
            FloatReference reference) {
        QdqLayers.Result found = QdqLayers.find(quantModel);
        List<String> skipped = new ArrayList<>(found.skipped());
        Map<String, FloatLayer> floats = new HashMap<>();
        List<QdqLayer> layers = new ArrayList<>();
        GraphEditor fg = new GraphEditor(floatModel.graph());
        for (QdqLayer l : found.layers()) {
            FloatLayer f = floatCounterpart(fg, l);
            if (f == null) {
                skipped.add(l.kind().opType + " node '" + l.name() + "': no float layer of the same name and kind");
                continue;
            }
            floats.put(l.name(), f);
            layers.add(l);
        }
        return compensate(floatModel, quantModel, layers, floats, skipped, data, progress, reference);
    }

    /**
     * Compensates the given layers of {@code quantModel}, each measured against its float
     * counterpart in {@code floats} (keyed by layer name); {@code skipped} is passed through to the
     * result.
     */
    public Result compensate(Model floatModel, Model quantModel, List<QdqLayer> layers, Map<String, FloatLayer> floats,
            List<String> skipped, CalibrationSource data, Progress progress) {
        return compensate(floatModel, quantModel, layers, floats, skipped, data, progress, null);
    }

    /** As above, comparing with the float activations of {@code reference} (null: a reference of its own). */
    public Result compensate(Model floatModel, Model quantModel, List<QdqLayer> layers, Map<String, FloatLayer> floats,
            List<String> skipped, CalibrationSource data, Progress progress, FloatReference reference) {
        Map<String, ChannelFit> fits = new LinkedHashMap<>();
        if (options.method() == CwacOptions.Method.NONE || layers.isEmpty()) {
            return new Result(quantModel, List.copyOf(layers), Map.copyOf(floats), fits, List.copyOf(skipped));
        }
        List<List<QdqLayer>> stages = options.schedule() == CwacOptions.Schedule.PARALLEL ? List.of(layers)
                : grouped(stages(quantModel, layers), options.stages());
        List<String> floatOuts = new ArrayList<>();
        for (QdqLayer l : layers) {
            floatOuts.add(floats.get(l.name()).output());
        }
        // The float activations do not change between stages: one reference, each batch computed once.
        FloatReference own = reference != null && reference.serves(floatOuts) ? null
                : FloatReference.of(floatModel, floatOuts);
        FloatReference ref = own != null ? own : reference;
        Model current = quantModel;
        try {
            int s = 0;
            for (List<QdqLayer> stage : stages) {
                s++;
                Map<String, ChannelFit> stageFits = measureAndFit(current, floatModel, ref, stage, floats, data,
                        progress, stages.size() == 1 ? "compensate" : "compensate stage " + s + "/" + stages.size());
                fits.putAll(stageFits);
                current = new CwacFold(stage, stageFits).run(current).model();
            }
        } finally {
            if (own != null) {
                own.close();
            }
        }
        return new Result(current, List.copyOf(layers), Map.copyOf(floats), fits, List.copyOf(skipped));
    }

    private static FloatLayer floatCounterpart(GraphEditor fg, QdqLayer l) {
        for (NodeProto n : fg.nodes()) {
            if (n.getName().equals(l.name()) && n.getOpType().equals(l.kind().opType)) {
                if (l.biasAdd() == null) {
                    return new FloatLayer(n, List.of(), n.getOutput(0));
                }
                List<NodeProto> readers = fg.consumers(n.getOutput(0));
                if (readers.size() == 1 && readers.get(0).getOpType().equals("Add")) {
                    return new FloatLayer(n, List.of(readers.get(0)), readers.get(0).getOutput(0));
                }
                return null;
            }
        }
        return null;
    }

    /**
     * Groups layers into stages: a layer's stage is one more than the latest stage of any quantized
     * layer upstream of it, so layers in one stage never feed each other.
     */
    static List<List<QdqLayer>> stages(Model quant, List<QdqLayer> layers) {
        Map<String, QdqLayer> byName = new HashMap<>();
        for (QdqLayer l : layers) {
            byName.put(l.name(), l);
        }
        Map<String, Integer> depth = new HashMap<>();
        TreeMap<Integer, List<QdqLayer>> stages = new TreeMap<>();
        for (NodeProto n : quant.graph().getNodeList()) {
            int d = 0;
            for (String in : n.getInputList()) {
                d = Math.max(d, depth.getOrDefault(in, 0));
            }
            QdqLayer l = byName.get(n.getName());
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
    static List<List<QdqLayer>> grouped(List<List<QdqLayer>> stages, int most) {
        if (most == 0 || stages.size() <= most) {
            return stages;
        }
        List<List<QdqLayer>> out = new ArrayList<>();
        for (int g = 0; g < most; g++) {
            List<QdqLayer> joined = new ArrayList<>();
            for (int k = g * stages.size() / most; k < (g + 1) * stages.size() / most; k++) {
                joined.addAll(stages.get(k));
            }
            out.add(joined);
        }
        return out;
    }

    /** The layers of {@code stage} that read (through any path) the output of another layer of it. */
    static List<QdqLayer> fedByStage(Model quant, List<QdqLayer> stage) {
        Map<String, QdqLayer> byName = new HashMap<>();
        for (QdqLayer l : stage) {
            byName.put(l.name(), l);
        }
        Set<String> downstream = new HashSet<>();
        List<QdqLayer> fed = new ArrayList<>();
        for (NodeProto n : quant.graph().getNodeList()) {
            boolean reached = false;
            for (String in : n.getInputList()) {
                reached |= downstream.contains(in);
            }
            QdqLayer l = byName.get(n.getName());
            if (l != null) {
                if (downstream.contains(l.input())) {
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

    private Map<String, ChannelFit> measureAndFit(Model quant, Model floatModel, FloatReference reference,
            List<QdqLayer> stage, Map<String, FloatLayer> floats, CalibrationSource data, Progress progress,
            String task) {
        // Global target: a layer fed by another layer of this stage is measured against its local target,
        // as that layer's compensation is not known yet (measured on MiniLM grouped in 6 stages: cosine
        // 0.9766 / 0.9579 with the float activation there, 0.9926 / 0.9860 with the local target).
        List<QdqLayer> local = options.target() == CwacOptions.Target.LOCAL ? stage : fedByStage(quant, stage);
        Map<String, String> localTargets = new HashMap<>();
        Model measured = local.isEmpty() ? quant : withLocalTargets(quant, floatModel, local, floats, localTargets);
        List<String> quantOuts = new ArrayList<>();
        boolean anyGlobal = false;
        for (QdqLayer l : stage) {
            quantOuts.add(l.output());
            if (localTargets.containsKey(l.name())) {
                quantOuts.add(localTargets.get(l.name()));
            } else {
                anyGlobal = true;
            }
        }
        boolean needsFloat = anyGlobal;
        // Two folds, by sample parity: the cross-validated gate fits on one and scores on the other.
        boolean folds = options.gate() == CwacOptions.Gate.CV;
        Map<String, ChannelStats[]> stats = new LinkedHashMap<>();
        for (QdqLayer l : stage) {
            stats.put(l.name(), new ChannelStats[] {new ChannelStats(l.channels()), new ChannelStats(l.channels())});
        }
        // Only what the stage's outputs depend on runs: an early stage runs the start of the model.
        Model sliced = Slice.to(measured, quantOuts);
        try (OrtRunner quantRunner = OrtRunner.forPasses(sliced, List.of())) {
            progress.start(task, data.size());
            int batch = Batches.batchable(InputSpecs.of(sliced.graph())) ? maxBatch : 1;
            Batches.run(quantRunner, data, batch, quantOuts, progress, (b, q) -> {
                Map<String, FloatTensor> f = needsFloat ? reference.get(b) : Map.of();
                for (QdqLayer l : stage) {
                    FloatTensor yq = q.get(l.output());
                    String target = localTargets.get(l.name());
                    FloatTensor yf = target != null ? q.get(target) : f.get(floats.get(l.name()).output());
                    ChannelStats[] st = stats.get(l.name());
                    int axis = l.outputChannelAxis(yq.shape().length);
                    if (!folds) {
                        st[0].add(yq, yf, axis);
                        continue;
                    }
                    for (int i = 0; i < b.count(); i++) {
                        st[b.ordinals().get(i) % 2].add(yq, yf, axis, i, b.count());
                    }
                }
            });
            progress.finish();
        }
        Map<String, ChannelFit> fits = new LinkedHashMap<>();
        for (QdqLayer l : stage) {
            ChannelStats[] st = stats.get(l.name());
            fits.put(l.name(), folds
                    ? Solver.fitCrossValidated(st[0], st[1], options.method(), l.hasBias(), options.ridge(),
                            options.maxGain())
                    : Solver.fit(ChannelStats.sum(st[0], st[1]), options.method(), l.hasBias(), options.ridge(),
                            options.maxGain()));
        }
        return fits;
    }

    /**
     * The quantized model plus, for each layer, a float copy of the layer reading the quantized
     * model's own (dequantized) input: QwT's local target. Only used for measuring; never saved.
     */
    private static Model withLocalTargets(Model quant, Model floatModel, List<QdqLayer> stage,
            Map<String, FloatLayer> floats, Map<String, String> targets) {
        GraphEditor fg = new GraphEditor(floatModel.graph());
        GraphEditor g = new GraphEditor(quant.graph());
        for (QdqLayer l : stage) {
            FloatLayer f = floats.get(l.name());
            NodeProto fn = f.node();
            NodeProto.Builder clone = fn.toBuilder().clearInput().clearMetadataProps()
                    .setName(g.names().fresh(fn.getName() + "_local_target"));
            clone.addInput(l.input());
            for (int i = 1; i < fn.getInputCount(); i++) {
                String in = fn.getInput(i);
                if (in.isEmpty() || !fg.isInitializer(in)) {
                    clone.addInput(in);
                    continue;
                }
                String copy = g.names().fresh(in + "_float");
                g.putInitializer(fg.initializer(in).toBuilder().setName(copy).build());
                clone.addInput(copy);
            }
            String out = g.names().fresh(fn.getOutput(0) + "_local_target");
            clone.clearOutput().addOutput(out);
            g.append(clone.build());
            String chain = fn.getOutput(0);
            for (NodeProto t : f.tail()) {
                // The absorbed node again, reading the clone's output and copies of its constants.
                NodeProto.Builder tc = t.toBuilder().clearInput().clearOutput().clearMetadataProps()
                        .setName(g.names().fresh(t.getName() + "_local_target"));
                for (String in : t.getInputList()) {
                    if (in.equals(chain)) {
                        tc.addInput(out);
                    } else if (!in.isEmpty() && fg.isInitializer(in)) {
                        String copy = g.names().fresh(in + "_float");
                        g.putInitializer(fg.initializer(in).toBuilder().setName(copy).build());
                        tc.addInput(copy);
                    } else {
                        tc.addInput(in);
                    }
                }
                chain = t.getOutput(0);
                out = g.names().fresh(chain + "_local_target");
                g.append(tc.addOutput(out).build());
            }
            targets.put(l.name(), out);
        }
        GraphProto built = g.build();
        return quant.withGraph(built);
    }

}
