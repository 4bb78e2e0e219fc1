package dev.qwtonnx.model;

import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The names a node's subgraphs (If branches, Loop and Scan bodies) read from the enclosing scope:
 * a subgraph may use any tensor visible where its node stands without listing it as an input, so
 * these reads are uses the node's input list does not show.
 */
public final class Subgraphs {
    private Subgraphs() {
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
        for (AttributeProto a : n.getAttributeList()) {
            if (a.hasG()) {
                reads.addAll(freeNames(a.getG()));
            }
            for (GraphProto g : a.getGraphsList()) {
                reads.addAll(freeNames(g));
            }
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
