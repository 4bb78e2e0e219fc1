package dev.qwtonnx.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SubgraphsTest {
    private static NodeProto node(String name, String op, List<String> in, List<String> out, GraphProto... graphs) {
        NodeProto.Builder b = NodeProto.newBuilder().setName(name).setOpType(op).addAllInput(in).addAllOutput(out);
        if (graphs.length == 2) {
            b.addAttribute(AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH)
                    .setG(graphs[0]));
            b.addAttribute(AttributeProto.newBuilder().setName("else_branch").setType(AttributeProto.AttributeType.GRAPH)
                    .setG(graphs[1]));
        } else if (graphs.length == 1) {
            b.addAttribute(AttributeProto.newBuilder().setName("body").setType(AttributeProto.AttributeType.GRAPH)
                    .setG(graphs[0]));
        }
        return b.build();
    }

    private static GraphProto graph(String name, NodeProto... nodes) {
        return GraphProto.newBuilder().setName(name).addAllNode(List.of(nodes)).build();
    }

    /** An If whose then branch holds a Loop whose body reads 'outer'; the else branch has value_info. */
    private static GraphProto nested() {
        GraphProto body = graph("body", node("inner", "Relu", List.of("outer"), List.of("r")));
        GraphProto then = graph("then", node("loop", "Loop", List.of("n", ""), List.of("l"), body),
                node("after", "Abs", List.of("l"), List.of("t")));
        GraphProto otherwise = graph("else", node("neg", "Neg", List.of("x"), List.of("e"))).toBuilder()
                .addValueInfo(ValueInfoProto.newBuilder().setName("e")).build();
        return graph("main", node("if", "If", List.of("c"), List.of("y"), then, otherwise),
                node("last", "Identity", List.of("y"), List.of("z")));
    }

    @Test
    void nodesAreVisitedEachBeforeTheNodesInsideIt() {
        List<String> seen = new ArrayList<>();
        Subgraphs.forEachNode(nested(), n -> seen.add(n.getName()));
        assertEquals(List.of("if", "loop", "inner", "after", "neg", "last"), seen);
    }

    @Test
    void graphsAreVisitedOuterFirst() {
        List<String> seen = new ArrayList<>();
        Subgraphs.forEachGraph(nested(), g -> seen.add(g.getName()));
        assertEquals(List.of("main", "then", "body", "else"), seen);
    }

    @Test
    void anyGraphFindsANestedGraphAndOfListsANodesSubgraphsInAttributeOrder() {
        assertTrue(Subgraphs.anyGraph(nested(), g -> g.getValueInfoCount() > 0));
        assertFalse(Subgraphs.anyGraph(nested(), g -> g.getName().equals("missing")));
        NodeProto ifNode = nested().getNode(0);
        assertEquals(List.of("then", "else"), Subgraphs.of(ifNode).stream().map(GraphProto::getName).toList());
        assertEquals(List.of(), Subgraphs.of(nested().getNode(1)));
    }

    @Test
    void outerReadsAreTheNamesSubgraphsUseButDoNotDefine() {
        assertEquals(Set.of("n", "outer", "x"), Subgraphs.outerReads(nested().getNode(0)));
    }
}
