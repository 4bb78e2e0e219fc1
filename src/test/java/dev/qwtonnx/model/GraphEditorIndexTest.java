package dev.qwtonnx.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The editor's producer and consumer index, kept up to date edit by edit, answers as an index built afresh from the
 * edited graph does: after every edit of a long random sequence (inserts before and after, appends, replacements
 * that rewire inputs, removals), for every tensor, the producer, the readers in graph order and the use count.
 */
class GraphEditorIndexTest {
    private static NodeProto node(String name, List<String> in, String out) {
        return NodeProto.newBuilder().setOpType("Add").setName(name).addAllInput(in).addOutput(out).build();
    }

    private static void assertSameIndex(GraphEditor edited, Set<String> tensors, String after) {
        GraphEditor fresh = new GraphEditor(edited.build());
        for (String t : tensors) {
            NodeProto p = edited.producer(t);
            NodeProto q = fresh.producer(t);
            assertEquals(q == null ? null : q.getName(), p == null ? null : p.getName(), after + ": producer of " + t);
            assertEquals(fresh.consumers(t).stream().map(NodeProto::getName).toList(),
                    edited.consumers(t).stream().map(NodeProto::getName).toList(), after + ": readers of " + t);
            assertEquals(fresh.useCount(t), edited.useCount(t), after + ": uses of " + t);
        }
    }

    @Test
    void editsKeepTheIndexAsABuildFromScratchWouldHaveIt() {
        Random r = new Random(7);
        GraphProto.Builder g = GraphProto.newBuilder().setName("g")
                .addInput(ValueInfoProto.newBuilder().setName("x").setType(TypeProto.getDefaultInstance()));
        List<String> tensors = new ArrayList<>(List.of("x"));
        for (int i = 0; i < 40; i++) {
            String a = tensors.get(r.nextInt(tensors.size()));
            String b = tensors.get(r.nextInt(tensors.size()));
            g.addNode(node("n" + i, List.of(a, b), "t" + i));
            tensors.add("t" + i);
        }
        g.addOutput(ValueInfoProto.newBuilder().setName("t39"));
        GraphEditor e = new GraphEditor(g.build());
        Set<String> all = new LinkedHashSet<>(tensors);
        e.useCount("x"); // the index is built: every edit below updates it
        int made = 0;
        for (int step = 0; step < 300; step++) {
            List<NodeProto> nodes = e.nodesSnapshot();
            NodeProto at = nodes.get(r.nextInt(nodes.size()));
            int pos = nodes.indexOf(at);
            // An input from before the node's place keeps the graph in order (not that the index needs it).
            String earlier = pos == 0 ? "x" : nodes.get(r.nextInt(pos)).getOutput(0);
            String what;
            switch (r.nextInt(5)) {
                case 0 -> {
                    NodeProto added = node("m" + made, List.of(earlier, earlier), "u" + made++);
                    e.insertBefore(at, added);
                    all.add(added.getOutput(0));
                    what = "insertBefore " + at.getName();
                }
                case 1 -> {
                    NodeProto added = node("m" + made, List.of(at.getOutput(0)), "u" + made++);
                    NodeProto second = node("m" + made, List.of(added.getOutput(0), earlier), "u" + made++);
                    e.insertAfter(at, added, second);
                    all.add(added.getOutput(0));
                    all.add(second.getOutput(0));
                    what = "insertAfter " + at.getName();
                }
                case 2 -> {
                    NodeProto added = node("m" + made, List.of(nodes.get(nodes.size() - 1).getOutput(0)), "u" + made++);
                    e.append(added);
                    all.add(added.getOutput(0));
                    what = "append";
                }
                case 3 -> {
                    NodeProto rewired = e.setInput(at, r.nextInt(at.getInputCount()), earlier);
                    assertSame(rewired, e.producer(rewired.getOutput(0)));
                    what = "setInput " + at.getName();
                }
                default -> {
                    if (e.useCount(at.getOutput(0)) > 0) {
                        continue;
                    }
                    e.remove(at);
                    what = "remove " + at.getName();
                }
            }
            assertSameIndex(e, all, "step " + step + " (" + what + ")");
        }
    }
}
