package dev.qwtonnx.verify;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SQNR of each matched layer's output against its float counterpart, over the samples: globally
 * (the float model's tensor, so upstream errors count) and locally (a float copy of the layer reading
 * the quantized model's own input of that layer, so only this layer's error counts). The copies live
 * in a measuring model that is never saved, measured with the float model in one graph and session
 * where they can share one ({@link MeasuringGraph}). Reading a layer's output keeps ORT from fusing
 * that layer, so these figures are of the QDQ arithmetic, not of the integer kernel (whose effect
 * shows in the output fidelity).
 */
public final class LayerFidelityMeter {
    private LayerFidelityMeter() {
    }

    /**
     * SQNR (dB) over samples (their energies summed, as the output fidelity's, see {@link Fidelity.Energies}) and
     * the worst sample's, global and local (local null when not measured), and
     * the layer's own error with its input's quantization counted: a float copy reading the
     * tensor its input QuantizeLinear reads (null where the input is not quantized by a Q/DQ pair
     * in the graph).
     */
    public record Figures(double meanDb, double minDb, Double localMeanDb, Double ownMeanDb) {
        public Figures(double meanDb, double minDb, Double localMeanDb) {
            this(meanDb, minDb, localMeanDb, null);
        }
    }

    public static Map<String, Figures> measure(Model floatModel, Model quantModel, List<LayerCounterparts.Match> matches,
            CalibrationSource data, Progress progress, String task) {
        return measure(floatModel, List.of(new Subject(quantModel, matches)), false, data, progress, task).get(0);
    }

    /** A quantized model and its layers matched to the float model's. */
    public record Subject(Model model, List<LayerCounterparts.Match> matches) {
    }

    /**
     * The figures of each subject, in order, from one pass of the float model over {@code data}
     * (shared: a model and its uncompensated self are measured at the cost of one float pass);
     * {@code own}: also the own-error figure of the first subject, input quantization counted (a second
     * float copy per layer; the others' are not read).
     */
    public static List<Map<String, Figures>> measure(Model floatModel, List<Subject> subjects, boolean own,
            CalibrationSource data, Progress progress, String task) {
        return measure(floatModel, subjects, own, data, progress, task, Pass.DEFAULT);
    }

    /**
     * How the pass runs. {@code together}: one session over one graph holding the float model and
     * every subject (false: a session per model, as where the models cannot share one graph);
     * {@code oneRunAtATime}: that session's runs one after another rather than as many in flight as
     * ORT has threads. The graph holds the float model, the quantized one and a float copy of each
     * layer, so two runs in flight hold that many activations twice (on an OCR recognizer, enough to make
     * this pass the run's peak), and a large sample keeps ORT's threads busy by itself. Small samples
     * (sentences) gain from runs in flight.
     */
    public record Pass(boolean together, boolean oneRunAtATime) {
        /** One graph, runs in flight as ORT has threads. */
        public static final Pass DEFAULT = new Pass(true, false);
    }

    /** As {@link #measure(Model, List, boolean, CalibrationSource, Progress, String)}, the pass run as {@code pass} says. */
    public static List<Map<String, Figures>> measure(Model floatModel, List<Subject> subjects, boolean own,
            CalibrationSource data, Progress progress, String task, Pass pass) {
        List<Measuring> ms = new ArrayList<>();
        MeasuringGraph.Prefixes prefixes = !pass.together() ? null : MeasuringGraph.prefixes(floatModel,
                subjects.stream().map(Subject::model).toList());
        if (prefixes != null) {
            for (Subject sub : subjects) {
                ms.add(new Measuring(sub, floatModel, own && ms.isEmpty(), prefixes.floatPrefix(),
                        prefixes.subject(ms.size())));
            }
            return measureTogether(floatModel, prefixes.floatPrefix(), ms, data, progress, task, pass.oneRunAtATime());
        }
        java.util.Set<String> floatOuts = new java.util.LinkedHashSet<>();
        for (Subject sub : subjects) {
            ms.add(new Measuring(sub, floatModel, own && ms.isEmpty(), null, null));
            for (LayerCounterparts.Match m : sub.matches()) {
                floatOuts.add(m.floatOutput());
            }
        }
        List<OrtRunner> runners = new ArrayList<>();
        try (OrtRunner fr = OrtRunner.forFewRuns(floatModel, floatOuts)) {
            for (Measuring m : ms) {
                runners.add(OrtRunner.forFewRuns(m.model, m.quantOuts));
            }
            progress.start(task, data.size());
            for (Sample s : data) {
                Map<String, FloatTensor> f = fr.run(s, floatOuts);
                for (int j = 0; j < ms.size(); j++) {
                    ms.get(j).add(f, runners.get(j).run(s, ms.get(j).quantOuts));
                }
                progress.step();
            }
            progress.finish();
        } finally {
            for (OrtRunner r : runners) {
                r.close();
            }
        }
        return ms.stream().map(Measuring::figures).toList();
    }

    /**
     * The figures from one session over one graph holding the float model and every subject's
     * measuring graph (their names prefixed apart, the inputs shared, the float copies reading the
     * float model's own weights), every SQNR summed inside it: one session and one run per sample,
     * instead of one session per model and every layer's output copied out of ORT.
     */
    private static List<Map<String, Figures>> measureTogether(Model floatModel, String floatPrefix, List<Measuring> ms,
            CalibrationSource data, Progress progress, String task, boolean oneRunAtATime) {
        List<String> fetched = new ArrayList<>();
        ms.forEach(m -> fetched.addAll(m.quantOuts));
        Model together = MeasuringGraph.combine(floatModel, floatPrefix, ms.stream().map(m -> m.model).toList(), fetched);
        try (OrtRunner r = OrtRunner.forFewRuns(together, List.of())) {
            if (oneRunAtATime) {
                r.oneRunAtATime();
            }
            progress.start(task, data.size());
            // As many samples at once as the session takes (its outputs are a few sums per layer), or one at a time
            // (see Pass), the sums added in sample order.
            Batches.run(r, data, 1, fetched, progress, (b, out) -> ms.forEach(m -> m.add(null, out)));
            progress.finish();
        }
        return ms.stream().map(Measuring::figures).toList();
    }

    /** One subject's measuring model and running sums. */
    private static final class Measuring {
        final List<LayerCounterparts.Match> matches;
        final Map<String, String> outputs = new HashMap<>();
        final Map<String, List<String>> localSums = new HashMap<>();
        final Map<String, List<String>> ownSums = new HashMap<>();
        /** Per layer, the sums of its global SQNR (measured together) or none (the float tensor is fetched). */
        final Map<String, List<String>> globalSums = new HashMap<>();
        final Model model;
        final List<String> quantOuts = new ArrayList<>();
        /** Per layer, the global, local and own targets' energies and errors summed over samples. */
        final Fidelity.Energies[] global;
        final Fidelity.Energies[] local;
        final Fidelity.Energies[] ownErrors;
        final double[] min;
        int n;

        /**
         * @param floatPrefix null: measured against a float session of its own (the float copies get copies of
         *     the float weights); else the prefix of the float model's names in the graph measured together
         * @param prefix the prefix of this model's names in that graph
         */
        Measuring(Subject sub, Model floatModel, boolean own, String floatPrefix, String prefix) {
            matches = sub.matches();
            Map<String, String> localTargets = new HashMap<>();
            Map<String, String> ownTargets = new HashMap<>();
            Model withTargets = withLocalTargets(sub.model(), floatModel, matches, localTargets, own ? ownTargets : null,
                    outputs, floatPrefix);
            // The local and own targets live in this model with the layer's result: their SQNR is summed in it, and
            // only two scalars per target leave ORT (copying the targets out cost more than computing them).
            GraphEditor g = new GraphEditor(withTargets.graph());
            for (LayerCounterparts.Match m : matches) {
                String node = m.layer().node();
                if (floatPrefix == null) {
                    quantOuts.add(outputs.get(node));
                } else {
                    List<String> sums = appendSums(g, floatPrefix + m.floatOutput(), outputs.get(node));
                    globalSums.put(node, sums);
                    quantOuts.addAll(sums);
                }
                if (localTargets.containsKey(node)) {
                    List<String> sums = appendSums(g, localTargets.get(node), outputs.get(node));
                    localSums.put(node, sums);
                    quantOuts.addAll(sums);
                }
                if (ownTargets.containsKey(node)) {
                    List<String> sums = appendSums(g, ownTargets.get(node), outputs.get(node));
                    ownSums.put(node, sums);
                    quantOuts.addAll(sums);
                }
            }
            Model built = withTargets.withGraph(g.build());
            if (prefix != null) {
                java.util.function.UnaryOperator<String> p = MeasuringGraph.renamer(built.graph(), prefix);
                model = built.withGraph(MeasuringGraph.prefixed(built.graph(), p, prefix));
                quantOuts.replaceAll(p);
                for (Map<String, List<String>> sums : List.of(globalSums, localSums, ownSums)) {
                    sums.replaceAll((k, v) -> v.stream().map(p).toList());
                }
            } else {
                model = built;
            }
            int k = matches.size();
            global = new Fidelity.Energies[k];
            local = new Fidelity.Energies[k];
            ownErrors = new Fidelity.Energies[k];
            for (int i = 0; i < k; i++) {
                global[i] = new Fidelity.Energies();
                local[i] = new Fidelity.Energies();
                ownErrors[i] = new Fidelity.Energies();
            }
            min = new double[k];
            java.util.Arrays.fill(min, Double.POSITIVE_INFINITY);
        }

        void add(Map<String, FloatTensor> f, Map<String, FloatTensor> q) {
            for (int i = 0; i < matches.size(); i++) {
                LayerCounterparts.Match m = matches.get(i);
                List<String> g = globalSums.get(m.layer().node());
                double db = g != null ? global[i].add(scalar(q, g.get(0)), scalar(q, g.get(1)))
                        : global[i].add(f.get(m.floatOutput()).data(), q.get(outputs.get(m.layer().node())).data());
                min[i] = Math.min(min[i], db);
                List<String> l = localSums.get(m.layer().node());
                if (l != null) {
                    local[i].add(scalar(q, l.get(0)), scalar(q, l.get(1)));
                }
                List<String> o = ownSums.get(m.layer().node());
                if (o != null) {
                    ownErrors[i].add(scalar(q, o.get(0)), scalar(q, o.get(1)));
                }
            }
            n++;
        }

        Map<String, Figures> figures() {
            Map<String, Figures> out = new LinkedHashMap<>();
            for (int i = 0; i < matches.size(); i++) {
                String node = matches.get(i).layer().node();
                out.put(node, new Figures(global[i].sqnrDb(), min[i],
                        n == 0 || !localSums.containsKey(node) ? null : local[i].sqnrDb(),
                        n == 0 || !ownSums.containsKey(node) ? null : ownErrors[i].sqnrDb()));
            }
            return out;
        }
    }

    /**
     * The quantized model plus, per layer, its float counterpart reading the layer's float input
     * ({@code targets}) and, where that input is a QuantizeLinear/DequantizeLinear pair's result, one
     * reading the pair's float input ({@code own}; null: none); and a DequantizeLinear of each QOperator layer's
     * output ({@code outputs} maps every layer to the float tensor holding its result).
     */
    private static Model withLocalTargets(Model quant, Model floatModel, List<LayerCounterparts.Match> matches,
            Map<String, String> targets, Map<String, String> own, Map<String, String> outputs, String floatPrefix) {
        GraphEditor fg = new GraphEditor(floatModel.graph());
        GraphEditor g = new GraphEditor(quant.graph());
        Map<String, NodeProto> floatNodes = new HashMap<>();
        for (NodeProto n : fg.nodes()) {
            floatNodes.put(n.getName(), n);
        }
        Map<String, String> copied = new HashMap<>();
        for (LayerCounterparts.Match m : matches) {
            QuantizedLayers.Layer l = m.layer();
            String result = l.output();
            if (l.outputScale() != null) {
                result = g.names().fresh(l.output() + "_measured");
                List<String> in = l.outputZeroPoint() == null || l.outputZeroPoint().isEmpty()
                        ? List.of(l.output(), l.outputScale()) : List.of(l.output(), l.outputScale(), l.outputZeroPoint());
                g.append(Nodes.node("DequantizeLinear", g.names().fresh(l.node() + "_measured"), in, List.of(result),
                        "verify"));
            } else if (l.outputBias() != null) { // the float MatMul it is compared with adds no bias
                result = g.names().fresh(l.output() + "_measured");
                g.append(Nodes.node("Sub", g.names().fresh(l.node() + "_measured"), List.of(l.output(), l.outputBias()),
                        List.of(result), "verify"));
            }
            outputs.put(l.node(), result);
            NodeProto fn = floatNodes.get(m.floatNode());
            String floatInput = l.floatInput();
            if (l.style() == dev.qwtonnx.cwac.LayerFinder.Style.QOPERATOR) {
                List<String> q = l.quantizedInput().get(2).isEmpty() ? l.quantizedInput().subList(0, 2)
                        : l.quantizedInput();
                floatInput = g.names().fresh(q.get(0) + "_measured");
                g.append(Nodes.node("DequantizeLinear", g.names().fresh(l.node() + "_input_measured"), q,
                        List.of(floatInput), "verify"));
            }
            if (floatInput == null || fn == null) {
                continue;
            }
            NodeProto.Builder clone = fn.toBuilder().clearInput().clearOutput().clearMetadataProps()
                    .setName(g.names().fresh(fn.getName() + "_local_target"));
            clone.addInput(floatInput);
            boolean constantRest = true;
            for (int i = 1; i < fn.getInputCount(); i++) {
                String in = fn.getInput(i);
                if (in.isEmpty()) {
                    clone.addInput(in);
                } else if (fg.isInitializer(in) && floatPrefix != null) {
                    clone.addInput(floatPrefix + in); // the float model's own weight, in the graph measured together
                } else if (fg.isInitializer(in)) {
                    String copy = copied.computeIfAbsent(in, x -> {
                        String name = g.names().fresh(x + "_float");
                        g.putInitializer(fg.initializer(x).toBuilder().setName(name).build());
                        return name;
                    });
                    clone.addInput(copy);
                } else {
                    constantRest = false;
                }
            }
            if (!constantRest) {
                continue; // the float layer reads another activation (not a weight): no local copy
            }
            targets.put(m.layer().node(), appendCopy(g, clone, fn, m.floatRelu(), "_local_target"));
            String before = own == null ? null : quantizedFrom(g, floatInput);
            if (before != null) {
                NodeProto.Builder second = clone.clone().setName(g.names().fresh(fn.getName() + "_own_target"))
                        .clearOutput().setInput(0, before);
                own.put(m.layer().node(), appendCopy(g, second, fn, m.floatRelu(), "_own_target"));
            }
        }
        return quant.withGraph(g.build());
    }

    /**
     * Appends Σ target² and Σ (target − result)² (scalars) to {@code g}; their names, in that order.
     * Summed over samples ({@link Fidelity.Energies}), the figure {@link Fidelity#sqnrDb} gives, each sample's
     * sums in ORT's float arithmetic rather than in double.
     */
    private static List<String> appendSums(GraphEditor g, String target, String result) {
        String diff = g.names().fresh(target + "_error");
        String energy = g.names().fresh(target + "_energy");
        String error = g.names().fresh(target + "_error_energy");
        g.append(Nodes.node("Sub", g.names().fresh(target + "_error"), List.of(target, result), List.of(diff), "verify"));
        g.append(Nodes.node("ReduceSumSquare", g.names().fresh(target + "_energy"), List.of(target), List.of(energy),
                "verify", Nodes.intAttribute("keepdims", 0)));
        g.append(Nodes.node("ReduceSumSquare", g.names().fresh(target + "_error_energy"), List.of(diff), List.of(error),
                "verify", Nodes.intAttribute("keepdims", 0)));
        return List.of(energy, error);
    }

    /** One of the scalars of {@link #appendSums}. */
    private static double scalar(Map<String, FloatTensor> out, String name) {
        return out.get(name).data()[0];
    }

    /** Appends {@code copy} of float node {@code fn}, and a Relu after it where the float layer has one; its result. */
    private static String appendCopy(GraphEditor g, NodeProto.Builder copy, NodeProto fn, boolean relu, String suffix) {
        String out = g.names().fresh(fn.getOutput(0) + suffix);
        copy.addOutput(out);
        g.append(copy.build());
        if (!relu) {
            return out;
        }
        String r = g.names().fresh(out + "_relu");
        g.append(Nodes.node("Relu", g.names().fresh(fn.getName() + suffix + "_relu"), List.of(out), List.of(r),
                "verify"));
        return r;
    }

    /** The float tensor a DequantizeLinear(QuantizeLinear(x)) pair producing {@code tensor} reads (x), or null. */
    private static String quantizedFrom(GraphEditor g, String tensor) {
        NodeProto dq = g.producer(tensor);
        if (dq == null || !dq.getOpType().equals("DequantizeLinear")) {
            return null;
        }
        NodeProto q = g.producer(dq.getInput(0));
        return q == null || !q.getOpType().equals("QuantizeLinear") ? null : q.getInput(0);
    }
}
