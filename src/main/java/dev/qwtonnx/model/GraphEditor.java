package dev.qwtonnx.model;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A mutable view of one graph for rewriting: the node list in order, initializers by name, and a
 * producer/consumer index that every edit keeps current, so that rewiring updates both ends of an
 * edge. New names come from the graph's {@link NameAuthority}.
 */
public final class GraphEditor {
    private final GraphProto original;
    private final List<NodeProto> nodes;
    private final LinkedHashMap<String, TensorProto> initializers = new LinkedHashMap<>();
    private final List<ValueInfoProto> outputs;
    private final NameAuthority names;
    private Map<String, NodeProto> producers;
    private Map<String, List<NodeProto>> consumers;
    private Map<String, Integer> subgraphReads;

    public GraphEditor(GraphProto graph) {
        this(graph, new NameAuthority(graph));
    }

    /**
     * An editor for a graph whose new names come from {@code names}: for a subgraph, the authority
     * of the whole model, so that a name made inside the subgraph cannot shadow one outside it.
     */
    public GraphEditor(GraphProto graph, NameAuthority names) {
        this.original = graph;
        this.nodes = new ArrayList<>(graph.getNodeList());
        for (TensorProto t : graph.getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        this.outputs = new ArrayList<>(graph.getOutputList());
        this.names = names;
    }

    public NameAuthority names() {
        return names;
    }

    public List<NodeProto> nodes() {
        return Collections.unmodifiableList(nodes);
    }

    /** A snapshot of the nodes, safe to iterate while editing. */
    public List<NodeProto> nodesSnapshot() {
        return List.copyOf(nodes);
    }

    public TensorProto initializer(String name) {
        return initializers.get(name);
    }

    /**
     * The value of {@code name} where it is fixed: an initializer that a caller cannot override as a graph input;
     * else null (and for the empty name of an absent optional input).
     */
    public TensorProto constant(String name) {
        return name.isEmpty() || isGraphInput(name) ? null : initializers.get(name);
    }

    public boolean isInitializer(String name) {
        return initializers.containsKey(name);
    }

    public void putInitializer(TensorProto t) {
        initializers.put(t.getName(), t);
    }

    public void removeInitializer(String name) {
        initializers.remove(name);
    }

    /** Drops an initializer nothing reads any more (one also listed as a graph input stays). */
    public void removeInitializerIfUnused(String name) {
        if (name != null && useCount(name) == 0 && !isGraphInput(name)) {
            initializers.remove(name);
        }
    }

    public boolean isGraphOutput(String name) {
        for (ValueInfoProto v : outputs) {
            if (v.getName().equals(name)) {
                return true;
            }
        }
        return false;
    }

    public boolean isGraphInput(String name) {
        for (ValueInfoProto v : original.getInputList()) {
            if (v.getName().equals(name)) {
                return true;
            }
        }
        return false;
    }

    private void index() {
        if (producers != null) {
            return;
        }
        producers = new HashMap<>();
        consumers = new HashMap<>();
        subgraphReads = new HashMap<>();
        for (NodeProto n : nodes) {
            for (String r : Subgraphs.outerReads(n)) {
                subgraphReads.merge(r, 1, Integer::sum);
            }
            for (String o : n.getOutputList()) {
                if (!o.isEmpty()) {
                    producers.put(o, n);
                }
            }
            for (String i : n.getInputList()) {
                if (!i.isEmpty()) {
                    consumers.computeIfAbsent(i, k -> new ArrayList<>()).add(n);
                }
            }
        }
    }

    /**
     * Indexes {@code n}, now at {@code pos} in the node list, where the index is built (else the first query builds
     * it whole). An edit updates the index rather than dropping it: a pass that queries between edits (the quantizer
     * does per layer) would otherwise rebuild it from every node per edit, which on a 600-layer network was most of
     * inserting Q/DQ and lowering.
     */
    private void indexAdd(NodeProto n, int pos) {
        if (producers == null) {
            return;
        }
        for (String r : Subgraphs.outerReads(n)) {
            subgraphReads.merge(r, 1, Integer::sum);
        }
        for (String o : n.getOutputList()) {
            if (!o.isEmpty()) {
                producers.put(o, n);
            }
        }
        Set<NodeProto> before = null;
        for (String i : n.getInputList()) {
            if (i.isEmpty()) {
                continue;
            }
            List<NodeProto> readers = consumers.computeIfAbsent(i, k -> new ArrayList<>());
            if (pos == nodes.size() - 1 || readers.isEmpty()) {
                readers.add(n);
                continue;
            }
            // In graph order: after the readers that stand before it.
            if (before == null) {
                before = Collections.newSetFromMap(new IdentityHashMap<>());
                before.addAll(nodes.subList(0, pos));
            }
            int at = 0;
            while (at < readers.size() && before.contains(readers.get(at))) {
                at++;
            }
            readers.add(at, n);
        }
    }

    /** Takes {@code n} out of the index, where it is built. */
    private void indexRemove(NodeProto n) {
        if (producers == null) {
            return;
        }
        for (String r : Subgraphs.outerReads(n)) {
            subgraphReads.merge(r, -1, (a, b) -> a + b == 0 ? null : a + b);
        }
        for (String o : n.getOutputList()) {
            if (!o.isEmpty() && producers.get(o) == n) {
                producers.remove(o);
            }
        }
        for (String i : n.getInputList()) {
            List<NodeProto> readers = i.isEmpty() ? null : consumers.get(i);
            if (readers == null) {
                continue;
            }
            for (int k = 0; k < readers.size(); k++) {
                if (readers.get(k) == n) {
                    readers.remove(k);
                    break;
                }
            }
            if (readers.isEmpty()) {
                consumers.remove(i);
            }
        }
    }

    /** The node producing a tensor, or null for graph inputs, initializers and unknown names. */
    public NodeProto producer(String tensor) {
        index();
        return producers.get(tensor);
    }

    /** The nodes reading a tensor, in graph order (a node reading it twice appears once). */
    public List<NodeProto> consumers(String tensor) {
        index();
        List<NodeProto> c = consumers.getOrDefault(tensor, List.of());
        List<NodeProto> distinct = new ArrayList<>();
        for (NodeProto n : c) {
            if (!distinct.stream().anyMatch(d -> d == n)) {
                distinct.add(n);
            }
        }
        return distinct;
    }

    /**
     * How many places read a tensor: node inputs, graph outputs, and nodes whose subgraphs (If
     * branches, Loop and Scan bodies) read it from this graph's scope.
     */
    public int useCount(String tensor) {
        index();
        return consumers.getOrDefault(tensor, List.of()).size() + (isGraphOutput(tensor) ? 1 : 0)
                + subgraphReads.getOrDefault(tensor, 0);
    }

    private int position(NodeProto n) {
        for (int i = 0; i < nodes.size(); i++) {
            if (nodes.get(i) == n) {
                return i;
            }
        }
        throw new IllegalStateException("node is not in this graph: " + Nodes.describe(n));
    }

    public void insertBefore(NodeProto anchor, NodeProto... added) {
        insertAt(position(anchor), added);
    }

    private void insertAt(int pos, NodeProto... added) {
        nodes.addAll(pos, List.of(added));
        for (int j = 0; j < added.length; j++) {
            indexAdd(added[j], pos + j);
        }
    }

    public void insertAfter(NodeProto anchor, NodeProto... added) {
        insertAt(position(anchor) + 1, added);
    }

    public void append(NodeProto... added) {
        insertAt(nodes.size(), added);
    }

    /** Puts {@code replacement} where {@code old} was; returns the replacement. */
    public NodeProto replace(NodeProto old, NodeProto replacement) {
        int pos = position(old);
        nodes.set(pos, replacement);
        indexRemove(old);
        indexAdd(replacement, pos);
        return replacement;
    }

    public void remove(NodeProto n) {
        nodes.remove(position(n));
        indexRemove(n);
    }

    /** Makes every reader of {@code from} except those in {@code except} read {@code to} instead. */
    public void redirectConsumers(String from, String to, Set<NodeProto> except) {
        for (NodeProto c : consumers(from)) {
            if (except.stream().anyMatch(e -> e == c)) {
                continue;
            }
            NodeProto.Builder b = c.toBuilder();
            for (int i = 0; i < b.getInputCount(); i++) {
                if (b.getInput(i).equals(from)) {
                    b.setInput(i, to);
                }
            }
            replace(c, b.build());
        }
    }

    /** Sets one input of a node; returns the new node (the old one is no longer in the graph). */
    public NodeProto setInput(NodeProto n, int index, String tensor) {
        return replace(n, n.toBuilder().setInput(index, tensor).build());
    }

    public GraphProto build() {
        GraphProto.Builder b = original.toBuilder().clearNode().addAllNode(nodes).clearInitializer()
                .addAllInitializer(initializers.values()).clearOutput().addAllOutput(outputs);
        // Graph inputs that are also initializers stay as they were (old exports list both).
        return b.build();
    }

    /** Fails with a clear message when a required initializer is missing. */
    public TensorProto requireInitializer(String name, NodeProto user) {
        TensorProto t = initializers.get(name);
        if (t == null) {
            throw new QwtException(Nodes.describe(user) + " needs constant '" + name + "' which is not an initializer");
        }
        return t;
    }
}
