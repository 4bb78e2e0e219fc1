package dev.qwtonnx.model;

import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.HashSet;
import java.util.Set;

/**
 * The one place new tensor and node names come from. It knows every name already used anywhere in
 * the graph, subgraphs included, so a name it hands out never collides.
 */
public final class NameAuthority {
    private final Set<String> used = new HashSet<>();

    public NameAuthority(GraphProto graph) {
        Subgraphs.forEachGraph(graph, this::collect);
    }

    private void collect(GraphProto g) {
        for (ValueInfoProto v : g.getInputList()) {
            used.add(v.getName());
        }
        for (ValueInfoProto v : g.getOutputList()) {
            used.add(v.getName());
        }
        for (ValueInfoProto v : g.getValueInfoList()) {
            used.add(v.getName());
        }
        for (TensorProto t : g.getInitializerList()) {
            used.add(t.getName());
        }
        for (NodeProto n : g.getNodeList()) {
            used.add(n.getName());
            used.addAll(n.getOutputList());
            used.addAll(n.getInputList());
        }
    }

    /** A name not used before, as close to {@code hint} as possible; it is reserved at once. */
    public String fresh(String hint) {
        String base = hint == null || hint.isEmpty() ? "qwt" : hint;
        if (used.add(base)) {
            return base;
        }
        for (int i = 1; ; i++) {
            String candidate = base + "_" + i;
            if (used.add(candidate)) {
                return candidate;
            }
        }
    }

    public boolean isUsed(String name) {
        return used.contains(name);
    }
}
