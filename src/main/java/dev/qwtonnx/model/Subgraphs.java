package dev.qwtonnx.model;

import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * A node's subgraphs (If branches, Loop and Scan bodies) and the one walk over nested graphs that
 * every reader of them uses. Also the names subgraphs read from the enclosing scope: a subgraph may
 * use any tensor visible where its node stands without listing it as an input, so these reads are
 * uses the node's input list does not show.
 */
public final class Subgraphs {
    private Subgraphs() {
    }

    /** The subgraphs held in {@code n}'s attributes, in attribute order. */
    public static List<GraphProto> of(NodeProto n) {
        List<GraphProto> out = new ArrayList<>();
        for (AttributeProto a : n.getAttributeList()) {
            if (a.hasG()) {
                out.add(a.getG());
            }
            out.addAll(a.getGraphsList());
        }
        return out;
    }

    /** Visits {@code g} and every graph nested in it at any depth, each graph before those inside it. */
    public static void forEachGraph(GraphProto g, Consumer<GraphProto> visit) {
        visit.accept(g);
        for (NodeProto n : g.getNodeList()) {
            for (GraphProto sub : of(n)) {
                forEachGraph(sub, visit);
            }
        }
    }

    /** Visits every node of {@code g} and of the graphs nested in it, each node before the nodes inside it. */
    public static void forEachNode(GraphProto g, Consumer<NodeProto> visit) {
        for (NodeProto n : g.getNodeList()) {
            visit.accept(n);
            for (GraphProto sub : of(n)) {
                forEachNode(sub, visit);
            }
        }
    }

    /** Whether {@code g} or a graph nested in it satisfies {@code test}. */
    public static boolean anyGraph(GraphProto g, Predicate<GraphProto> test) {
        if (test.test(g)) {
            return true;
        }
        for (NodeProto n : g.getNodeList()) {
            for (GraphProto sub : of(n)) {
                if (anyGraph(sub, test)) {
                    return true;
                }
            }
        }
        return false;
    }

    public static boolean hasSubgraphs(NodeProto n) {
        for (AttributeProto a : n.getAttributeList()) {
            if (a.hasG() || a.getGraphsCount() > 0) {
                return true;
            }
        }
        return false;
    }

    /** The names read inside {@code n}'s subgraphs (at any depth) that those subgraphs do not define, in order of use. */
    public static Set<String> outerReads(NodeProto n) {
        Set<String> reads = new LinkedHashSet<>();
        for (GraphProto g : of(n)) {
            reads.addAll(freeNames(g));
        }
        return reads;
    }

    /**
     * The node with {@code f} applied to each of its subgraphs; the same instance when {@code f}
     * returned every subgraph unchanged (the same instance).
     */
    public static NodeProto withSubgraphs(NodeProto n, java.util.function.UnaryOperator<GraphProto> f) {
        NodeProto.Builder b = null;
        for (int k = 0; k < n.getAttributeCount(); k++) {
            AttributeProto a = n.getAttribute(k);
            AttributeProto.Builder ab = null;
            if (a.hasG()) {
                GraphProto g = f.apply(a.getG());
                if (g != a.getG()) {
                    ab = a.toBuilder().setG(g);
                }
            }
            for (int j = 0; j < a.getGraphsCount(); j++) {
                GraphProto g = f.apply(a.getGraphs(j));
                if (g != a.getGraphs(j)) {
                    ab = (ab == null ? a.toBuilder() : ab).setGraphs(j, g);
                }
            }
            if (ab != null) {
                b = (b == null ? n.toBuilder() : b).setAttribute(k, ab);
            }
        }
        return b == null ? n : b.build();
    }

    /** The names a graph reads (node inputs, outputs, nested subgraphs' reads) that it does not define. */
    public static Set<String> freeNames(GraphProto g) {
        Set<String> defined = new HashSet<>();
        for (ValueInfoProto v : g.getInputList()) {
            defined.add(v.getName());
        }
        for (TensorProto t : g.getInitializerList()) {
            defined.add(t.getName());
        }
        for (NodeProto n : g.getNodeList()) {
            for (String o : n.getOutputList()) {
                defined.add(o);
            }
        }
        Set<String> free = new LinkedHashSet<>();
        for (NodeProto n : g.getNodeList()) {
            for (String i : n.getInputList()) {
                if (!i.isEmpty() && !defined.contains(i)) {
                    free.add(i);
                }
            }
            for (String i : outerReads(n)) {
                if (!defined.contains(i)) {
                    free.add(i);
                }
            }
        }
        for (ValueInfoProto v : g.getOutputList()) {
            if (!defined.contains(v.getName())) {
                free.add(v.getName());
            }
        }
        return free;
    }
}
