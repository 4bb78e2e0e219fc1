package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.FunctionProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Replaces each call of a model-local function by the function's body, so that the layers inside are
 * nodes of the graph like any other. Exporters that keep a network's modules as functions (torch's
 * dynamo exporter before its optimizer, onnxscript) put every Conv and MatMul in a function body,
 * where a pass sees one opaque node per module. ORT inlines them the same way when it loads the model,
 * so what it runs is unchanged.
 *
 * <p>A call's body nodes read the call's inputs and write its outputs; every other tensor and every node
 * gets a fresh name from the call's node name ({@code /block0/Block/MatMul}), so a body inlined twice
 * never collides. Attributes a body node refers to ({@code ref_attr_name}) take the call's value, or the
 * function's default, or are dropped where neither is given (an optional attribute). Calls within a body
 * are inlined in turn. A function is left as a function, with the reason, where its body node holds a
 * subgraph (whose outer reads would need renaming too), where it imports the default domain at another
 * version than the model, where it is an overload, or where calls nest deeper than {@value #MAX_DEPTH}
 * (recursion). Functions no node calls any more are dropped, and so is the import of a domain only they
 * defined.
 */
public final class InlineFunctions implements Pass {
    static final int MAX_DEPTH = 32;

    @Override
    public String name() {
        return "inline-functions";
    }

    @Override
    public PassResult run(Model model) {
        ModelProto p = model.proto();
        if (p.getFunctionsCount() == 0) {
            return PassResult.unchanged(model);
        }
        Map<String, FunctionProto> functions = new HashMap<>();
        List<Rejection> rejections = new ArrayList<>();
        long modelOpset = model.opsetVersion(Model.DEFAULT_DOMAIN);
        for (FunctionProto f : p.getFunctionsList()) {
            String why = whyNot(f, modelOpset);
            if (why == null) {
                functions.put(key(f.getDomain(), f.getName()), f);
            } else {
                rejections.add(new Rejection(name(), "function " + f.getDomain() + "." + f.getName(), why));
            }
        }
        if (functions.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        Inliner inliner = new Inliner(functions, new NameAuthority(p.getGraph()));
        GraphProto graph = inliner.graph(p.getGraph());
        if (!inliner.inlined) {
            return PassResult.unchanged(model, rejections);
        }
        // Functions still called (left as they were, or called from one that was) stay, with their domains.
        Set<String> called = new HashSet<>();
        Set<String> domains = new HashSet<>();
        Subgraphs.forEachNode(graph, n -> {
            called.add(key(n.getDomain(), n.getOpType()));
            domains.add(n.getDomain());
        });
        boolean grew = true;
        Set<String> keep = new HashSet<>();
        while (grew) {
            grew = false;
            for (FunctionProto f : p.getFunctionsList()) {
                String k = key(f.getDomain(), f.getName());
                if (!keep.contains(k) && called.contains(k)) {
                    keep.add(k);
                    grew = true;
                    for (NodeProto n : f.getNodeList()) {
                        called.add(key(n.getDomain(), n.getOpType()));
                        domains.add(n.getDomain());
                    }
                }
            }
        }
        List<FunctionProto> kept = p.getFunctionsList().stream().filter(f -> keep.contains(key(f.getDomain(), f.getName())))
                .toList();
        Set<String> defined = new HashSet<>();
        p.getFunctionsList().forEach(f -> defined.add(f.getDomain()));
        ModelProto.Builder b = p.toBuilder().setGraph(graph).clearFunctions().addAllFunctions(kept).clearOpsetImport();
        for (OperatorSetIdProto o : p.getOpsetImportList()) {
            boolean onlyFunctions = defined.contains(o.getDomain()) && !Model.isDefaultDomain(o.getDomain());
            if (!onlyFunctions || domains.contains(o.getDomain())) {
                b.addOpsetImport(o);
            }
        }
        return PassResult.changed(model.withProto(b.build()), rejections);
    }

    /** The model with every local function it can inline inlined. */
    public static Model apply(Model model) {
        return new InlineFunctions().run(model).model();
    }

    private static String key(String domain, String name) {
        return (Model.isDefaultDomain(domain) ? "" : domain) + "\u0000" + name;
    }

    /** Why {@code f}'s calls are left as they are, or null. */
    private static String whyNot(FunctionProto f, long modelOpset) {
        if (!f.getOverload().isEmpty()) {
            return "an overload (" + f.getOverload() + ")";
        }
        for (OperatorSetIdProto o : f.getOpsetImportList()) {
            if (Model.isDefaultDomain(o.getDomain()) && o.getVersion() != modelOpset) {
                return "its body imports opset " + o.getVersion() + ", the model " + modelOpset;
            }
        }
        for (NodeProto n : f.getNodeList()) {
            if (Subgraphs.hasSubgraphs(n)) {
                return "its node '" + n.getName() + "' (" + n.getOpType() + ") holds a subgraph";
            }
        }
        return null;
    }

    private static final class Inliner {
        private final Map<String, FunctionProto> functions;
        private final NameAuthority names;
        boolean inlined;

        Inliner(Map<String, FunctionProto> functions, NameAuthority names) {
            this.functions = functions;
            this.names = names;
        }

        GraphProto graph(GraphProto g) {
            List<NodeProto> out = new ArrayList<>();
            boolean changed = false;
            for (NodeProto n : g.getNodeList()) {
                NodeProto withSubs = Subgraphs.withSubgraphs(n, this::graph);
                changed |= withSubs != n;
                List<NodeProto> expanded = expand(withSubs, 0);
                changed |= expanded.size() != 1 || expanded.get(0) != withSubs;
                out.addAll(expanded);
            }
            return changed ? g.toBuilder().clearNode().addAllNode(out).build() : g;
        }

        /** {@code call} as the nodes it stands for: itself where it calls no inlinable function. */
        private List<NodeProto> expand(NodeProto call, int depth) {
            FunctionProto f = functions.get(key(call.getDomain(), call.getOpType()));
            if (f == null || depth >= MAX_DEPTH) {
                return List.of(call);
            }
            inlined = true;
            String prefix = call.getName().isEmpty() ? call.getOpType() : call.getName();
            Map<String, String> rename = new HashMap<>();
            for (int i = 0; i < f.getInputCount(); i++) {
                rename.put(f.getInput(i), i < call.getInputCount() ? call.getInput(i) : "");
            }
            for (int i = 0; i < f.getOutputCount(); i++) {
                // An output the call does not take is still written by the body: a fresh name keeps it apart.
                boolean taken = i < call.getOutputCount() && !call.getOutput(i).isEmpty();
                rename.put(f.getOutput(i), taken ? call.getOutput(i) : names.fresh(prefix + "/" + f.getOutput(i)));
            }
            Map<String, AttributeProto> given = new HashMap<>();
            for (AttributeProto a : f.getAttributeProtoList()) {
                given.put(a.getName(), a);
            }
            for (AttributeProto a : call.getAttributeList()) {
                given.put(a.getName(), a);
            }
            List<NodeProto> out = new ArrayList<>();
            for (NodeProto n : f.getNodeList()) {
                NodeProto.Builder b = n.toBuilder().clearInput().clearOutput().clearAttribute()
                        .setName(names.fresh(prefix + "/" + (n.getName().isEmpty() ? n.getOpType() : n.getName())));
                for (String in : n.getInputList()) {
                    b.addInput(in.isEmpty() ? "" : rename.computeIfAbsent(in, x -> names.fresh(prefix + "/" + x)));
                }
                for (String o : n.getOutputList()) {
                    b.addOutput(o.isEmpty() ? "" : rename.computeIfAbsent(o, x -> names.fresh(prefix + "/" + x)));
                }
                for (AttributeProto a : n.getAttributeList()) {
                    if (a.getRefAttrName().isEmpty()) {
                        b.addAttribute(a);
                    } else if (given.containsKey(a.getRefAttrName())) {
                        b.addAttribute(given.get(a.getRefAttrName()).toBuilder().setName(a.getName()).clearRefAttrName());
                    }
                }
                out.addAll(expand(b.build(), depth + 1));
            }
            return out;
        }
    }
}
