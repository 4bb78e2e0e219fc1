package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * Puts the nodes of every graph (subgraphs included) in topological order, as ONNX requires and
 * as ONNX Runtime does itself when it loads a model: some converters write nodes out of order
 * (onnxconverter-common's float16 conversion with {@code keep_io_types} appends the input Casts
 * after the nodes that read them), and ORT runs such models. The order is stable: a node moves
 * only behind what it reads, otherwise the nodes keep the order they were written in, and a
 * sorted graph is returned as the same instance. A graph with a cycle is left as it is, for the
 * checker to report.
 */
public final class SortNodes implements Pass {
    @Override
    public String name() {
        return "sort-nodes";
    }

    @Override
    public PassResult run(Model model) {
        GraphProto sorted = sort(model.graph());
        return sorted == model.graph() ? PassResult.unchanged(model) : PassResult.changed(model.withGraph(sorted));
    }

    /** The model with every graph's nodes in topological order. */
    public static Model apply(Model model) {
        return new SortNodes().run(model).model();
    }

    private static GraphProto sort(GraphProto g) {
        int count = g.getNodeCount();
        List<NodeProto> nodes = new ArrayList<>(count);
        boolean subgraphChanged = false;
        for (NodeProto n : g.getNodeList()) {
            NodeProto s = Subgraphs.withSubgraphs(n, SortNodes::sort);
            subgraphChanged |= s != n;
            nodes.add(s);
        }
        int[] order = order(nodes);
        boolean inOrder = true;
        for (int i = 0; i < count && order != null; i++) {
            inOrder &= order[i] == i;
        }
        if ((order == null || inOrder) && !subgraphChanged) {
            return g;
        }
        GraphProto.Builder b = g.toBuilder().clearNode();
        for (int i = 0; i < count; i++) {
            b.addNode(nodes.get(order == null ? i : order[i]));
        }
        return b.build();
    }

    /**
     * The nodes' indices in a topological order that takes, of the nodes ready, always the one
     * written first (Kahn's algorithm); null when the graph has a cycle. A node reads what its
     * inputs name and what its subgraphs read from the enclosing scope.
     */
    private static int[] order(List<NodeProto> nodes) {
        int count = nodes.size();
        Map<String, Integer> producer = new HashMap<>();
        for (int i = 0; i < count; i++) {
            for (String out : nodes.get(i).getOutputList()) {
                if (!out.isEmpty()) {
                    producer.putIfAbsent(out, i);
                }
            }
        }
        int[] waiting = new int[count];
        List<List<Integer>> readers = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            readers.add(new ArrayList<>());
        }
        for (int i = 0; i < count; i++) {
            NodeProto n = nodes.get(i);
            Set<String> reads = new LinkedHashSet<>(n.getInputList());
            if (Subgraphs.hasSubgraphs(n)) {
                reads.addAll(Subgraphs.outerReads(n));
            }
            for (String in : reads) {
                Integer p = in.isEmpty() ? null : producer.get(in);
                if (p != null && p != i) {
                    waiting[i]++;
                    readers.get(p).add(i);
                }
            }
        }
        PriorityQueue<Integer> ready = new PriorityQueue<>();
        for (int i = 0; i < count; i++) {
            if (waiting[i] == 0) {
                ready.add(i);
            }
        }
        int[] order = new int[count];
        int placed = 0;
        while (!ready.isEmpty()) {
            int i = ready.poll();
            order[placed++] = i;
            for (int r : readers.get(i)) {
                if (--waiting[r] == 0) {
                    ready.add(r);
                }
            }
        }
        return placed == count ? order : null;
    }
}
