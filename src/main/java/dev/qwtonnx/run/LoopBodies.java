package dev.qwtonnx.run;

import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.MinMaxObserver;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.cwac.QdqLayer;
import dev.qwtonnx.cwac.PairedOutputs;
import dev.qwtonnx.cwac.QdqLayers;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Rejection;
import dev.qwtonnx.prepare.RemoveUnusedInitializers;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.WeightRounding;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Quantizes the layers inside Loop and Scan bodies (nested ones too) where they are: a body runs
 * many times per model run with state carried between iterations, so it cannot be lifted out as
 * an If branch is. Ranges come from a measurement copy of the float model in which every body
 * tensor that needs one is also a body output after the carried ones, i.e. a scan output: ORT
 * stacks it over the iterations and the Loop/Scan node hands it out as an extra output (threaded
 * out level by level when bodies are nested), so the observers see every iteration's values.
 * With MinMax, and when a tensor's shape changes between iterations (ORT then refuses to stack
 * it), each iteration's ReduceMin and ReduceMax are exported instead: exact for MinMax, extremes
 * only for the histogram methods (said in the log).
 *
 * <p>Each body's layers are then planned on the body (outer constants it reads copied in for the
 * plan, and dropped again where unchanged) and rewritten by {@link QdqQuantizer} with names from
 * the whole model's authority. With compensation asked for, each body layer then gets one CWAC fit
 * per channel over all iterations, folded into the body's own initializers ({@link #compensate}).
 */
final class LoopBodies {
    private static final Set<String> LOOP_OPS = Set.of("Loop", "Scan");
    static final String UNCOMPENSATED = "not compensated";

    private LoopBodies() {
    }

    /** The model with its bodies quantized, what each body says, and the layers whose fits could not be folded. */
    record Outcome(Model model, List<QuantizeRun.LoopBody> bodies, List<Rejection> foldRejections) {
    }

    /** One body: the Loop/Scan node names from the top graph down to it, its plan, its layers nobody plans. */
    private record Body(List<String> path, NodeProto node, LayerMatcher.Result plan, List<String> unreachable) {
        String where() {
            return Nodes.describe(node);
        }
    }

    private static boolean isLoop(NodeProto n) {
        return LOOP_OPS.contains(n.getOpType()) && Model.isDefaultDomain(n.getDomain());
    }

    private static GraphProto body(NodeProto n) {
        return Nodes.attr(n, "body").filter(AttributeProto::hasG).map(AttributeProto::getG).orElse(null);
    }

    /** Whether some Loop/Scan body (at any depth below the graph's own Loop/Scan nodes) holds a Conv/MatMul/Gemm. */
    static boolean hasCandidates(Model prepared, dev.qwtonnx.quant.QuantOptions options) {
        for (Body b : bodies(prepared, options)) {
            if (!b.plan().layers().isEmpty() || !b.plan().rejected().isEmpty() || !b.unreachable().isEmpty()) {
                return true;
            }
        }
        return false;
    }

    private static List<Body> bodies(Model model, dev.qwtonnx.quant.QuantOptions options) {
        List<Body> found = new ArrayList<>();
        walk(model, model.graph(), constants(Map.of(), model.graph()), List.of(), options, found);
        return found;
    }

    private static Map<String, TensorProto> constants(Map<String, TensorProto> outer, GraphProto g) {
        Map<String, TensorProto> scope = new HashMap<>(outer);
        for (TensorProto t : g.getInitializerList()) {
            scope.put(t.getName(), t);
        }
        return scope;
    }

    private static void walk(Model model, GraphProto g, Map<String, TensorProto> scope, List<String> path,
            dev.qwtonnx.quant.QuantOptions options, List<Body> found) {
        withBodies(g, path, (n, body, inner) -> {
            LayerMatcher.Result plan = LayerMatcher.match(lifted(model, body, scope, new LinkedHashSet<>()), options);
            List<String> unreachable = new ArrayList<>();
            for (NodeProto m : body.getNodeList()) {
                if (!isLoop(m) && Subgraphs.hasSubgraphs(m)) {
                    for (NodeProto layer : layersInside(m)) {
                        unreachable.add(Nodes.describe(layer) + ": inside " + Nodes.describe(m)
                                + " (only If nodes of the top graph are lifted out)");
                    }
                }
            }
            found.add(new Body(inner, n, plan, unreachable));
            walk(model, body, constants(scope, body), inner, options, found);
            return n;
        });
    }

    private static List<NodeProto> layersInside(NodeProto n) {
        List<NodeProto> layers = new ArrayList<>();
        for (GraphProto sub : Subgraphs.of(n)) {
            Subgraphs.forEachNode(sub, m -> {
                if (LayerKind.of(m.getOpType()) != null && Model.isDefaultDomain(m.getDomain())) {
                    layers.add(m);
                }
            });
        }
        return layers;
    }

    /** The body as a model of its own for planning: the outer constants it reads copied in (listed in {@code copied}). */
    private static Model lifted(Model model, GraphProto body, Map<String, TensorProto> scope, Set<String> copied) {
        GraphProto.Builder g = body.toBuilder();
        Set<String> own = new LinkedHashSet<>();
        body.getInitializerList().forEach(t -> own.add(t.getName()));
        for (String f : Subgraphs.freeNames(body)) {
            TensorProto t = scope.get(f);
            if (t != null && !own.contains(f)) {
                g.addInitializer(t);
                copied.add(f);
            }
        }
        return model.withGraph(g.build());
    }

    /**
     * Quantizes the layers of every Loop/Scan body of {@code prepared} inside {@code out} (the
     * quantized model, whose bodies are still the float ones).
     */
    static Outcome quantize(Model prepared, Model out, CalibrationSource calib, QuantizeRun.Options options,
            Progress progress, Consumer<String> say) {
        List<Body> bodies = bodies(prepared, options.quant());
        if (bodies.isEmpty()) {
            return new Outcome(out, List.of(), List.of());
        }
        Map<List<String>, Set<String>> wanted = new LinkedHashMap<>();
        for (Body b : bodies) {
            if (!b.plan().layers().isEmpty()) {
                wanted.put(b.path(), b.plan().tensorsToCalibrate());
            }
        }
        Map<List<String>, Map<String, Range>> ranges = wanted.isEmpty() ? Map.of()
                : measure(prepared, wanted, calib, options.calib(), progress, say);
        Set<List<String>> neverRan = new LinkedHashSet<>();
        wanted.forEach((path, tensors) -> {
            if (!ranges.getOrDefault(path, Map.of()).keySet().containsAll(tensors)) {
                neverRan.add(path);
            }
        });
        NameAuthority names = new NameAuthority(out.graph());
        Map<List<String>, Body> byPath = new HashMap<>();
        bodies.forEach(b -> byPath.put(b.path(), b));
        neverRan.forEach(byPath::remove);
        GraphProto g = rewrite(out, out.graph(), constants(Map.of(), out.graph()), List.of(), byPath, ranges, options,
                names);
        Model current = new RemoveUnusedInitializers().run(out.withGraph(g)).model();
        Map<List<String>, String> compensated = new HashMap<>();
        List<Rejection> foldRejections = new ArrayList<>();
        if (options.cwac().method() != CwacOptions.Method.NONE && !byPath.isEmpty()) {
            current = compensate(prepared, current, byPath, calib, options.cwac(), say, compensated, foldRejections);
        }
        List<QuantizeRun.LoopBody> report = new ArrayList<>();
        boolean gptq = options.quant().effectiveRounding() == WeightRounding.GPTQ;
        for (Body b : bodies) {
            List<String> quantized = new ArrayList<>();
            List<String> leftFloat = new ArrayList<>();
            for (LayerPlan l : b.plan().layers()) {
                if (neverRan.contains(b.path())) {
                    leftFloat.add(l + ": the body never ran on the calibration data, so it has no ranges (inside the body of "
                            + b.where() + ")");
                } else {
                    quantized.add(l.toString());
                }
            }
            for (String r : b.plan().rejected()) {
                leftFloat.add(r + " (inside the body of " + b.where() + ")");
            }
            for (String r : b.unreachable()) {
                leftFloat.add(r + " (inside the body of " + b.where() + ")");
            }
            if (quantized.isEmpty() && leftFloat.isEmpty()) {
                continue;
            }
            String summary = b.where() + " body: quantized " + quantized.size() + (quantized.size() == 1 ? " layer" : " layers")
                    + (quantized.isEmpty() ? "" : " calibrated over all iterations, "
                            + compensated.getOrDefault(b.path(), UNCOMPENSATED)
                            + (gptq ? ", weights rounded to nearest (GPTQ does not reach bodies)" : ""));
            QuantizeRun.LoopBody lb = new QuantizeRun.LoopBody(b.node().getName(), b.node().getOpType(), List.copyOf(quantized),
                    List.copyOf(leftFloat), summary);
            say.accept(summary);
            leftFloat.forEach(r -> say.accept("left in float: " + r));
            report.add(lb);
        }
        return new Outcome(current, List.copyOf(report), List.copyOf(foldRejections));
    }

    /**
     * CWAC for the quantized layers of the bodies: each layer's output in the float and in the
     * quantized model is exported as a scan output (stacked over the iterations, as for ranges),
     * both run on the calibration samples the fits use, and one map per channel is fitted over all
     * rows and folded into the body's own scale and bias initializers by {@link CwacFold} (no node
     * added). All body layers are fitted at once against the float model (parallel, global target:
     * a body's iterations cannot be split into stages). {@code said} receives, per body path, what
     * the summary says about its compensation.
     */
    private static Model compensate(Model prepared, Model quantized, Map<List<String>, Body> bodies,
            CalibrationSource calib, CwacOptions cwac, Consumer<String> say, Map<List<String>, String> said,
            List<Rejection> rejected) {
        Map<List<String>, List<QdqLayer>> layers = new LinkedHashMap<>();
        Map<List<String>, Set<String>> floatWanted = new LinkedHashMap<>();
        Map<List<String>, Set<String>> quantWanted = new LinkedHashMap<>();
        Map<String, String> floatOutput = new HashMap<>(); // layer name → its output in the float body
        for (Body b : bodies.values()) {
            if (b.plan().layers().isEmpty()) {
                continue;
            }
            GraphProto qbody = bodyAt(quantized.graph(), b.path(), 0);
            List<QdqLayer> found = new ArrayList<>();
            for (QdqLayer l : QdqLayers.find(quantized.withGraph(qbody)).layers()) {
                for (LayerPlan p : b.plan().layers()) {
                    // The quantizer records on each layer the float node it came from.
                    if (p.name().equals(l.from()) && l.qlinear() == null) {
                        found.add(l);
                        floatOutput.put(l.name(), p.output());
                        floatWanted.computeIfAbsent(b.path(), k -> new LinkedHashSet<>()).add(p.output());
                        quantWanted.computeIfAbsent(b.path(), k -> new LinkedHashSet<>()).add(l.output());
                    }
                }
            }
            if (!found.isEmpty()) {
                layers.put(b.path(), found);
            }
        }
        if (layers.isEmpty()) {
            return quantized;
        }
        List<Export> fExports = new ArrayList<>();
        List<Export> qExports = new ArrayList<>();
        Model f = withExports(prepared, floatWanted, fExports);
        Model q = withExports(quantized, quantWanted, qExports);
        List<PairedOutputs.Pair> pairs = new ArrayList<>();
        layers.forEach((path, ls) -> {
            for (QdqLayer l : ls) {
                // Each level of nesting stacks one more leading axis.
                pairs.add(new PairedOutputs.Pair(l, exportOf(qExports, path, l.output()),
                        exportOf(fExports, path, floatOutput.get(l.name())), path.size()));
            }
        });
        PairedOutputs.Measured measured;
        try {
            measured = PairedOutputs.measure(f, q, pairs, calib, cwac.samples());
        } catch (OrtRunner.RunFailure e) {
            if (!e.raggedLoopOutput()) {
                throw e;
            }
            say.accept("a Loop/Scan body layer output changes shape between iterations, so ORT cannot stack it: body"
                    + " layers are not compensated");
            return quantized;
        }
        Compensator compensator = new Compensator(cwac);
        GraphProto g = quantized.graph();
        for (Map.Entry<List<String>, List<QdqLayer>> e : layers.entrySet()) {
            // Layers whose iterations differ from the float model's, or that never ran, keep their weights.
            List<QdqLayer> measuredHere = e.getValue().stream().filter(l -> measured.stats().containsKey(l.name()))
                    .toList();
            List<String> notFolded = new ArrayList<>();
            Compensator.Folded folded = compensator.fitAndFold(quantized.withGraph(bodyAt(g, e.getKey(), 0)),
                    measuredHere, measured.stats(), notFolded);
            for (Rejection r : folded.rejections()) {
                say.accept(r.toString());
                rejected.add(r);
            }
            g = withBodyAt(g, e.getKey(), 0, folded.model().graph());
            int count = measuredHere.size() - folded.rejections().size();
            said.put(e.getKey(), count == e.getValue().size()
                    ? "compensated (" + cwac.method().name().toLowerCase(java.util.Locale.ROOT)
                            + ", one fit per channel over all iterations, against the float model)"
                    : "compensated " + count + " of " + e.getValue().size() + " (the others' iterations differ from"
                            + " the float model's or never ran)");
        }
        return quantized.withGraph(g);
    }

    /** {@code m} with the wanted body tensors handed out as (stacked) graph outputs, listed in {@code exports}. */
    private static Model withExports(Model m, Map<List<String>, Set<String>> wanted, List<Export> exports) {
        GraphProto.Builder g = exported(m.graph(), List.of(), wanted, false, new NameAuthority(m.graph()), exports)
                .toBuilder();
        for (Export e : exports) {
            g.addOutput(floatOutput(e.name()));
        }
        return m.withGraph(g.build());
    }

    private static String exportOf(List<Export> exports, List<String> path, String tensor) {
        for (Export e : exports) {
            if (e.path().equals(path) && e.tensor().equals(tensor)) {
                return e.name();
            }
        }
        throw new IllegalStateException("no export of '" + tensor + "' from the body at " + path);
    }

    /** The body at {@code path} (Loop/Scan node names from the top), {@code depth} of them already walked. */
    private static GraphProto bodyAt(GraphProto g, List<String> path, int depth) {
        for (NodeProto n : g.getNodeList()) {
            if (isLoop(n) && n.getName().equals(path.get(depth)) && body(n) != null) {
                return depth == path.size() - 1 ? body(n) : bodyAt(body(n), path, depth + 1);
            }
        }
        throw new IllegalStateException("no Loop/Scan body at " + path);
    }

    /** {@code g} with the body at {@code path} replaced by {@code body}. */
    private static GraphProto withBodyAt(GraphProto g, List<String> path, int depth, GraphProto body) {
        return withBodies(g, path.subList(0, depth), (n, old, inner) -> {
            if (!inner.equals(path.subList(0, depth + 1))) {
                return n;
            }
            GraphProto b = depth == path.size() - 1 ? body : withBodyAt(old, path, depth + 1, body);
            return Nodes.withAttr(n, Nodes.attr(n, "body").orElseThrow().toBuilder().setG(b).build());
        });
    }

    /** Quantizes the bodies of {@code g}'s Loop/Scan nodes (and theirs, depth first). */
    private static GraphProto rewrite(Model model, GraphProto g, Map<String, TensorProto> scope, List<String> path,
            Map<List<String>, Body> bodies, Map<List<String>, Map<String, Range>> ranges, QuantizeRun.Options options,
            NameAuthority names) {
        return withBodies(g, path, (n, body, inner) -> {
            GraphProto q = body;
            Body planned = bodies.get(inner);
            if (planned != null && !planned.plan().layers().isEmpty()) {
                Set<String> copied = new LinkedHashSet<>();
                Model lifted = lifted(model, body, scope, copied);
                LayerMatcher.Result plan = LayerMatcher.match(lifted, options.quant());
                GraphProto rewritten = new QdqQuantizer(options.quant(), plan.layers(), ranges.get(inner))
                        .rewrite(lifted.graph(), names, true);
                // The copied outer constants the rewrite left as they were are read from the outer scope again.
                GraphProto.Builder kept = rewritten.toBuilder().clearInitializer();
                for (TensorProto t : rewritten.getInitializerList()) {
                    if (!copied.contains(t.getName())) {
                        kept.addInitializer(t);
                    } else if (!t.equals(scope.get(t.getName()))) {
                        throw new IllegalStateException("outer constant '" + t.getName() + "' changed inside a body");
                    }
                }
                q = kept.build();
            }
            q = rewrite(model, q, constants(scope, q), inner, bodies, ranges, options, names);
            return q == body ? n : Nodes.withAttr(n, Nodes.attr(n, "body").orElseThrow().toBuilder().setG(q).build());
        });
    }

    /** What to make of one Loop/Scan node, given its body and its path (the node names from the top down to it). */
    private interface BodyRewrite {
        NodeProto apply(NodeProto node, GraphProto body, List<String> path);
    }

    /** {@code g} with each of its Loop/Scan nodes replaced by what {@code f} makes of it. */
    private static GraphProto withBodies(GraphProto g, List<String> path, BodyRewrite f) {
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getNodeCount(); i++) {
            NodeProto n = b.getNode(i);
            GraphProto body = isLoop(n) ? body(n) : null;
            if (body == null) {
                continue;
            }
            List<String> inner = new ArrayList<>(path);
            inner.add(n.getName());
            NodeProto r = f.apply(n, body, List.copyOf(inner));
            if (r != n) {
                b.setNode(i, r);
            }
        }
        return b.build();
    }

    /** What a measurement output holds: a body tensor over all iterations, or each iteration's min or max. */
    private enum Kind { ALL, MIN, MAX }

    private record Export(List<String> path, String tensor, Kind kind, String name) {
    }

    /**
     * The ranges of every body tensor the plans need, by body path (Loop/Scan node names from the
     * top) and tensor name; {@code extremes}: from each iteration's min and max, else from the
     * stacked tensors (for tests: which one {@link #quantize} uses follows from the method).
     */
    static Map<List<String>, Map<String, Range>> bodyRanges(Model prepared, CalibrationSource calib, CalibOptions co,
            dev.qwtonnx.quant.QuantOptions q, boolean extremes) {
        Map<List<String>, Set<String>> wanted = new LinkedHashMap<>();
        for (Body b : bodies(prepared, q)) {
            if (!b.plan().layers().isEmpty()) {
                wanted.put(b.path(), b.plan().tensorsToCalibrate());
            }
        }
        return measure(prepared, wanted, calib, co, extremes, Progress.NONE);
    }

    /** The ranges of the wanted body tensors, by body path and tensor name. */
    private static Map<List<String>, Map<String, Range>> measure(Model prepared, Map<List<String>, Set<String>> wanted,
            CalibrationSource calib, CalibOptions co, Progress progress, Consumer<String> say) {
        boolean extremes = co.method() == RangeMethod.MINMAX;
        if (!extremes) {
            try {
                return measure(prepared, wanted, calib, co, false, progress);
            } catch (OrtRunner.RunFailure e) {
                if (!e.raggedLoopOutput()) {
                    throw e;
                }
                say.accept("a Loop/Scan body tensor changes shape between iterations, so ORT cannot stack it: body ranges"
                        + " come from each iteration's min and max (" + co.method().label() + " sees only those)");
            }
        }
        return measure(prepared, wanted, calib, co, true, progress);
    }

    private static Map<List<String>, Map<String, Range>> measure(Model prepared, Map<List<String>, Set<String>> wanted,
            CalibrationSource calib, CalibOptions co, boolean extremes, Progress progress) {
        NameAuthority names = new NameAuthority(prepared.graph());
        List<Export> exports = new ArrayList<>();
        GraphProto.Builder g = exported(prepared.graph(), List.of(), wanted, extremes, names, exports).toBuilder();
        Map<String, Export> byName = new LinkedHashMap<>();
        for (Export e : exports) {
            g.addOutput(floatOutput(e.name()));
            byName.put(e.name(), e);
        }
        Model measured = prepared.withGraph(g.build());
        Map<String, Range> found = new RangeCalibrator(n -> new Seen(byName.get(n).kind() == Kind.ALL
                ? co.observer(co.method()) : new MinMaxObserver()), co.batch())
                .calibrate(measured, byName.keySet(), calib, progress);
        Map<List<String>, Map<String, Range>> ranges = new LinkedHashMap<>();
        for (Export e : exports) {
            Range r = found.get(e.name());
            if (r == Seen.NEVER) {
                continue; // a body that never ran: no range, its layers stay float
            }
            // Each iteration's minimum: the least of them is the minimum; likewise for the maximum.
            Range part = switch (e.kind()) {
                case ALL -> r;
                case MIN -> new Range(r.min(), r.min());
                case MAX -> new Range(r.max(), r.max());
            };
            ranges.computeIfAbsent(e.path(), k -> new HashMap<>()).merge(e.tensor(), part, Range::union);
        }
        return ranges;
    }

    /** An observer that does not fail on a tensor it never saw (a body no sample ran): its range is {@link #NEVER}. */
    private record Seen(dev.qwtonnx.calib.RangeObserver inner) implements dev.qwtonnx.calib.RangeObserver {
        static final Range NEVER = new Range(Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY);

        @Override
        public void observe(float[] values) {
            inner.observe(values);
        }

        @Override
        public Range range() {
            Range r = inner.range();
            return r == null ? NEVER : r;
        }
    }

    private static ValueInfoProto floatOutput(String name) {
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE))).build();
    }

    /**
     * {@code g} with the wanted tensors of its bodies handed out: in a body, each wanted tensor (or
     * its ReduceMin/ReduceMax) becomes an extra body output, which is a scan output of the
     * Loop/Scan node, whose extra output is the value {@code exports} names in {@code g}.
     */
    private static GraphProto exported(GraphProto g, List<String> path, Map<List<String>, Set<String>> wanted,
            boolean extremes, NameAuthority names, List<Export> exports) {
        GraphProto.Builder b = g.toBuilder();
        for (String t : wanted.getOrDefault(path, Set.of())) {
            if (extremes) {
                for (Kind k : List.of(Kind.MIN, Kind.MAX)) {
                    String op = k == Kind.MIN ? "ReduceMin" : "ReduceMax";
                    String name = names.fresh(t + "_" + op);
                    b.addNode(Nodes.node(op, names.fresh(name), List.of(t), List.of(name), "measure",
                            Nodes.intAttribute("keepdims", 0)));
                    exports.add(new Export(path, t, k, name));
                }
            } else {
                // An Identity, so that a body input or an outer value is exported the same way as a node output.
                String name = names.fresh(t + "_iterations");
                b.addNode(Nodes.node("Identity", names.fresh(name), List.of(t), List.of(name), "measure"));
                exports.add(new Export(path, t, Kind.ALL, name));
            }
        }
        return withBodies(b.build(), path, (n, body, inner) -> {
            if (wanted.keySet().stream().noneMatch(p -> p.size() > path.size() && p.subList(0, inner.size()).equals(inner))) {
                return n;
            }
            List<Export> below = new ArrayList<>();
            GraphProto.Builder body2 = exported(body, inner, wanted, extremes, names, below).toBuilder();
            NodeProto.Builder node = n.toBuilder();
            for (Export e : below) {
                body2.addOutput(floatOutput(e.name()));
                String out = names.fresh(e.name() + "_stacked");
                node.addOutput(out);
                exports.add(new Export(e.path(), e.tensor(), e.kind(), out));
            }
            NodeProto withBody = Nodes.withAttr(node.build(), Nodes.attr(n, "body").orElseThrow().toBuilder()
                    .setG(body2.build()).build());
            return n.getOpType().equals("Scan") ? withScanOutputAttrs(withBody, below.size()) : withBody;
        });
    }

    /** A Scan's per-output axes and directions, where given, extended for the added scan outputs (axis 0, forward). */
    private static NodeProto withScanOutputAttrs(NodeProto n, int added) {
        NodeProto out = n;
        for (String name : List.of("scan_output_axes", "scan_output_directions")) {
            var a = Nodes.attr(out, name);
            if (a.isPresent()) {
                AttributeProto.Builder ab = a.get().toBuilder();
                for (int k = 0; k < added; k++) {
                    ab.addInts(0);
                }
                out = Nodes.withAttr(out, ab.build());
            }
        }
        return out;
    }
}
