package dev.qwtonnx.run;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
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
import dev.qwtonnx.prepare.RemoveUnusedInitializers;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.verify.TargetFidelity;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Quantizes the layers inside the branches of top-level {@code If} nodes. ORT cannot expose a
 * subgraph's tensors as graph outputs, so each branch is lifted out as a model of its own: the
 * outer-scope tensors it reads become its inputs, captured by running the float model on the
 * calibration samples (only the samples on which that branch is taken), and the outer
 * initializers it reads are copied in. That model goes through the whole pipeline (calibration,
 * Q/DQ, compensation; If nodes inside it the same way), and its graph goes back into the If node
 * with the copied initializers dropped and any new name that the outer graph already uses renamed.
 * Layers inside Loop and Scan bodies are quantized where they are (see {@link LoopBodies}).
 */
final class IfBranches {
    private static final List<String> BRANCHES = List.of("then_branch", "else_branch");

    private IfBranches() {
    }

    /** One branch: the run that quantized it, or why it was left in float. */
    record Branch(String ifNode, String branch, int samples, int layers, QuantizeRun.Result result, String leftFloat) {
        @Override
        public String toString() {
            String where = "If node '" + ifNode + "' " + branch;
            if (result == null) {
                return where + ": left in float: " + leftFloat;
            }
            return where + " (" + samples + " calibration samples): quantized " + quantized()
                    + (quantized() == 1 ? " layer" : " layers") + ", compensated " + result.compensation().changed();
        }

        /** Layers its run quantized in the branch's own graph (0: left in float). */
        int quantized() {
            return result == null ? 0 : result.plan().layers().size();
        }
    }

    record Outcome(Model model, List<Branch> branches) {
    }

    /** Whether any top-level If has a Conv, MatMul or Gemm somewhere in its branches. */
    static boolean hasCandidates(Model prepared) {
        return !candidates(prepared).isEmpty();
    }

    private static List<NodeProto> candidates(Model prepared) {
        List<NodeProto> ifs = new ArrayList<>();
        for (NodeProto n : prepared.graph().getNodeList()) {
            if (isIf(n) && BRANCHES.stream().anyMatch(b -> branch(n, b) != null && hasLayer(branch(n, b)))) {
                ifs.add(n);
            }
        }
        return ifs;
    }

    private static boolean isIf(NodeProto n) {
        return n.getOpType().equals("If") && Model.isDefaultDomain(n.getDomain());
    }

    private static GraphProto branch(NodeProto n, String name) {
        return Nodes.attr(n, name).filter(AttributeProto::hasG).map(AttributeProto::getG).orElse(null);
    }

    private static boolean hasLayer(GraphProto g) {
        return layerCount(g) > 0;
    }

    /** Conv, MatMul and Gemm nodes in a graph and its subgraphs. */
    private static int layerCount(GraphProto g) {
        int[] count = {0};
        Subgraphs.forEachNode(g, n -> count[0] += LayerKind.of(n.getOpType()) != null
                && Model.isDefaultDomain(n.getDomain()) ? 1 : 0);
        return count[0];
    }

    /**
     * Quantizes the If branches of {@code prepared} and puts them into {@code out} (the top-level
     * quantized model, whose If nodes still hold the float branches).
     */
    static Outcome quantize(Model prepared, Model out, QuantizeRun.Options options, RunContext ctx) {
        CalibrationSource calib = ctx.calibration();
        List<NodeProto> ifs = candidates(prepared);
        if (ifs.isEmpty()) {
            return new Outcome(out, List.of());
        }
        Map<String, TensorProto> initializers = new HashMap<>();
        for (TensorProto t : prepared.graph().getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        List<Map<String, HostTensor>> captured = capture(prepared, ifs, initializers.keySet(), calib);
        List<String> ids = new ArrayList<>();
        for (Sample s : calib) {
            ids.add(s.id());
        }
        // The float budget and the accuracy target choose among the top-level graph's layers only.
        QuantizeRun.Options inner = options.withQuant(options.quant().withFloatBudget(0)).withAccuracy(AccuracyOptions.NONE);
        List<Branch> branches = new ArrayList<>();
        Model current = out;
        for (NodeProto ifNode : ifs) {
            for (String name : BRANCHES) {
                GraphProto g = branch(ifNode, name);
                if (g == null || !hasLayer(g)) {
                    continue;
                }
                boolean takenWhen = name.equals("then_branch");
                Set<String> free = Subgraphs.freeNames(g);
                List<Sample> samples = new ArrayList<>();
                for (int i = 0; i < captured.size(); i++) {
                    HostTensor cond = captured.get(i).get(ifNode.getInput(0));
                    if (cond.numel() != 1 || (cond.toLongs()[0] != 0) != takenWhen) {
                        continue;
                    }
                    Map<String, HostTensor> feed = new LinkedHashMap<>();
                    for (String f : free) {
                        if (!initializers.containsKey(f)) {
                            feed.put(f, captured.get(i).get(f));
                        }
                    }
                    samples.add(new Sample(ids.get(i) + "/" + ifNode.getName() + "/" + name, feed));
                }
                if (samples.isEmpty()) {
                    branches.add(new Branch(ifNode.getName(), name, 0, layerCount(g), null, "never taken on the calibration data"));
                    continue;
                }
                Set<String> copied = new LinkedHashSet<>();
                Model lifted = lift(prepared, g, free, initializers, samples.get(0).inputs(), copied);
                String where = "If node '" + ifNode.getName() + "' " + name;
                QuantizeRun.Result r;
                try {
                    r = QuantizeRun.quantize(lifted, inner, ctx.on(CalibrationSources.ofList(samples), where + ": "));
                } catch (QwtException e) {
                    branches.add(new Branch(ifNode.getName(), name, samples.size(), layerCount(g), null, e.getMessage()));
                    continue;
                }
                GraphProto back = lower(r.model().graph(), g, copied, initializers, new NameAuthority(current.graph()));
                current = withBranch(current, ifNode.getName(), name, back);
                branches.add(new Branch(ifNode.getName(), name, samples.size(), layerCount(g), r, null));
            }
        }
        if (options.accuracy().hasTarget()) {
            current = returnToFloat(prepared, current, ifs, branches, options.accuracy(), ctx);
        }
        // The float weights the branches read from the outer graph are now read by nobody.
        current = new RemoveUnusedInitializers().run(current).model();
        return new Outcome(current, List.copyOf(branches));
    }

    /**
     * With an accuracy target: quantized branches returned to float, each whole, while the target is missed on the
     * measured samples. The top-level search ({@link AccuracyTargetStage}) cannot reach a branch's layers (they are
     * quantized after it, by a run of their own), so this search runs here, as greedy as that one: each step
     * measures the whole model with each quantized branch left returned to float (with those returned before) and
     * keeps the best, while a step raises the worst bound's margin and the branches returned hold at most the
     * target's share of the branches' quantized layers ({@link AccuracyOptions#maxFloat}). {@code branches} is
     * updated in place; {@code current} still holds the outer float weights the original branches read.
     */
    private static Model returnToFloat(Model prepared, Model current, List<NodeProto> ifs, List<Branch> branches,
            AccuracyOptions acc, RunContext ctx) {
        int quantizedLayers = branches.stream().mapToInt(Branch::quantized).sum();
        if (quantizedLayers == 0) {
            return current;
        }
        int limit = acc.maxFloat(quantizedLayers);
        List<TargetFidelity.Bound> bounds = acc.bounds(TargetFidelity.floatOutputs(prepared));
        TargetFidelity measure = new TargetFidelity(prepared, ctx.measured());
        TargetFidelity.Figures now = measure.measure(current, bounds);
        int returned = 0;
        while (!now.met()) {
            int best = -1;
            Model bestModel = null;
            TargetFidelity.Figures bestFigures = null;
            for (int i = 0; i < branches.size(); i++) {
                Branch b = branches.get(i);
                if (b.result() == null || returned + b.quantized() > limit) {
                    continue;
                }
                Model candidate = withBranch(current, b.ifNode(), b.branch(), original(ifs, b));
                TargetFidelity.Figures f;
                try {
                    f = measure.measure(candidate, bounds);
                } catch (QwtException e) {
                    continue; // a model ORT refuses is not a candidate
                }
                ctx.log().accept("accuracy target: If node '" + b.ifNode() + "' " + b.branch() + " in float: "
                        + f.describeWorst());
                if (bestFigures == null || f.margin() > bestFigures.margin()) {
                    best = i;
                    bestModel = candidate;
                    bestFigures = f;
                }
            }
            if (bestFigures == null || bestFigures.margin() <= now.margin()) {
                break;
            }
            Branch b = branches.get(best);
            returned += b.quantized();
            branches.set(best, new Branch(b.ifNode(), b.branch(), b.samples(), b.layers(), null,
                    "returned to float by the accuracy target (its " + quantizedLayers(b) + " together): " + now.describeWorst() + " -> " + bestFigures.describeWorst()));
            current = bestModel;
            now = bestFigures;
        }
        return current;
    }

    /** "1 quantized layer", "3 quantized layers": what a quantized branch holds. */
    static String quantizedLayers(Branch b) {
        int n = b.quantized();
        return n + " quantized layer" + (n == 1 ? "" : "s");
    }

    /** The float graph of {@code b} in the prepared model. */
    private static GraphProto original(List<NodeProto> ifs, Branch b) {
        for (NodeProto n : ifs) {
            if (n.getName().equals(b.ifNode())) {
                return branch(n, b.branch());
            }
        }
        throw new IllegalStateException("If node '" + b.ifNode() + "' is not in the prepared model");
    }

    /** Per calibration sample: the If conditions and every non-constant outer value the branches read. */
    private static List<Map<String, HostTensor>> capture(Model prepared, List<NodeProto> ifs, Set<String> initializers,
            CalibrationSource calib) {
        Set<String> graphInputs = new LinkedHashSet<>();
        for (ValueInfoProto v : prepared.graph().getInputList()) {
            graphInputs.add(v.getName());
        }
        Set<String> exposed = new LinkedHashSet<>();
        for (NodeProto n : ifs) {
            Set<String> reads = new LinkedHashSet<>();
            reads.add(n.getInput(0));
            reads.addAll(Subgraphs.outerReads(n));
            for (String r : reads) {
                if (!initializers.contains(r) && !graphInputs.contains(r)) {
                    exposed.add(r);
                }
            }
        }
        // Untyped outputs: ORT infers their types (conditions are bool, shapes int64).
        GraphProto.Builder g = prepared.graph().toBuilder();
        Set<String> outputs = new LinkedHashSet<>();
        prepared.graph().getOutputList().forEach(v -> outputs.add(v.getName()));
        for (String e : exposed) {
            if (outputs.add(e)) {
                g.addOutput(ValueInfoProto.newBuilder().setName(e));
            }
        }
        List<Map<String, HostTensor>> values = new ArrayList<>();
        // A pass of many short runs: ORT's threads wait between them instead of spinning (OrtRunner.forPasses).
        try (OrtRunner runner = OrtRunner.forPasses(prepared.withGraph(g.build()), List.of())) {
            for (Sample s : calib) {
                Map<String, HostTensor> v = new HashMap<>(runner.runHost(s, exposed));
                for (String in : graphInputs) {
                    if (s.inputs().containsKey(in)) {
                        v.put(in, s.inputs().get(in));
                    }
                }
                values.add(v);
            }
        }
        return values;
    }

    /** The branch as a model: outer values it reads are inputs (typed by the first sample), outer constants copied in. */
    private static Model lift(Model prepared, GraphProto branch, Set<String> free, Map<String, TensorProto> initializers,
            Map<String, HostTensor> first, Set<String> copied) {
        GraphProto.Builder g = branch.toBuilder().setName(branch.getName().isEmpty() ? "branch" : branch.getName());
        for (String f : free) {
            TensorProto t = initializers.get(f);
            if (t != null) {
                g.addInitializer(t);
                copied.add(f);
                continue;
            }
            HostTensor v = first.get(f);
            if (v == null) {
                throw new IllegalStateException("no captured value for '" + f + "'");
            }
            g.addInput(ValueInfoProto.newBuilder().setName(f).setType(TypeProto.newBuilder()
                    .setTensorType(TypeProto.Tensor.newBuilder().setElemType(v.type().code))));
        }
        return prepared.withProto(prepared.proto().toBuilder().setGraph(g).clearMetadataProps().build());
    }

    /**
     * The quantized branch as a subgraph again: only the branch's own inputs, the copied outer
     * constants dropped where they are unchanged (the outer ones are read instead), and every name
     * the rewrite introduced that the outer model already uses (or a copied constant it changed)
     * renamed, so nothing shadows a name of the enclosing graph.
     */
    private static GraphProto lower(GraphProto quantized, GraphProto original, Set<String> copied,
            Map<String, TensorProto> outer, NameAuthority outerNames) {
        NameAuthority own = new NameAuthority(original);
        Map<String, String> rename = new HashMap<>();
        GraphProto.Builder b = quantized.toBuilder().clearInput().addAllInput(original.getInputList()).clearInitializer();
        for (TensorProto t : quantized.getInitializerList()) {
            if (copied.contains(t.getName())) {
                if (t.equals(outer.get(t.getName()))) {
                    continue;
                }
                rename.put(t.getName(), outerNames.fresh(t.getName()));
            }
            b.addInitializer(t);
        }
        for (String defined : definedNames(quantized)) {
            if (!own.isUsed(defined) && !rename.containsKey(defined) && outerNames.isUsed(defined)) {
                rename.put(defined, outerNames.fresh(defined));
            }
        }
        return rename.isEmpty() ? b.build() : renamed(b.build(), rename);
    }

    /** Node names, node outputs and initializers defined in a graph and its subgraphs, in the order they stand. */
    private static Set<String> definedNames(GraphProto g) {
        Set<String> names = new LinkedHashSet<>();
        addDefined(g, names);
        names.remove("");
        return names;
    }

    private static void addDefined(GraphProto g, Set<String> names) {
        for (TensorProto t : g.getInitializerList()) {
            names.add(t.getName());
        }
        for (NodeProto n : g.getNodeList()) {
            names.add(n.getName());
            names.addAll(n.getOutputList());
            for (GraphProto sub : Subgraphs.of(n)) {
                addDefined(sub, names);
            }
        }
    }

    private static GraphProto renamed(GraphProto g, Map<String, String> m) {
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getInitializerCount(); i++) {
            b.setInitializer(i, b.getInitializer(i).toBuilder().setName(m.getOrDefault(b.getInitializer(i).getName(),
                    b.getInitializer(i).getName())));
        }
        for (int i = 0; i < b.getOutputCount(); i++) {
            b.setOutput(i, b.getOutput(i).toBuilder().setName(m.getOrDefault(b.getOutput(i).getName(),
                    b.getOutput(i).getName())));
        }
        for (int i = 0; i < b.getNodeCount(); i++) {
            NodeProto.Builder n = b.getNode(i).toBuilder();
            n.setName(m.getOrDefault(n.getName(), n.getName()));
            for (int k = 0; k < n.getInputCount(); k++) {
                n.setInput(k, m.getOrDefault(n.getInput(k), n.getInput(k)));
            }
            for (int k = 0; k < n.getOutputCount(); k++) {
                n.setOutput(k, m.getOrDefault(n.getOutput(k), n.getOutput(k)));
            }
            b.setNode(i, Subgraphs.withSubgraphs(n.build(), sub -> renamed(sub, m)));
        }
        return b.build();
    }

    private static Model withBranch(Model model, String ifName, String attribute, GraphProto branch) {
        GraphProto.Builder g = model.graph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (n.getName().equals(ifName) && isIf(n)) {
                AttributeProto a = Nodes.attr(n, attribute).orElseThrow().toBuilder().setG(branch).build();
                g.setNode(i, Nodes.withAttr(n, a));
                return model.withGraph(g.build());
            }
        }
        throw new IllegalStateException("If node '" + ifName + "' is not in the quantized model");
    }
}
