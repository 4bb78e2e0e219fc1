package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Nodes written out of order, as some converters write them, put in the order ONNX requires and ORT uses. */
class SortNodesTest {
    private static List<String> names(GraphProto g) {
        return g.getNodeList().stream().map(NodeProto::getName).toList();
    }

    /** x -> a:Relu -> t -> c:Neg -> u; x -> b:Sigmoid -> s; (u, s) -> d:Add -> y, written as d, c, b, a. */
    private static Model reversed() {
        return new ModelBuilder(13).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                .node("Add", "d", List.of("u", "s"), List.of("y"))
                .node("Neg", "c", List.of("t"), List.of("u"))
                .node("Sigmoid", "b", List.of("x"), List.of("s"))
                .node("Relu", "a", List.of("x"), List.of("t"))
                .build();
    }

    @Test
    void outOfOrderNodesAreSortedStablyAndComputeTheSame() {
        Model in = reversed();
        assertThrows(QwtException.class, () -> ModelChecker.check(in));
        Model out = SortNodes.apply(in);
        ModelChecker.checkForRuntime(out);
        // Of the nodes ready, the one written first: b before a, and c only once a has run.
        assertEquals(List.of("b", "a", "c", "d"), names(out.graph()));
        assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(3), 2, 3)), 0);
    }

    @Test
    void aSortedGraphIsTheSameInstance() {
        Model sorted = SortNodes.apply(reversed());
        assertSame(sorted, SortNodes.apply(sorted));
        assertSame(sorted.graph(), new SortNodes().run(sorted).model().graph());
    }

    @Test
    void subgraphsAreSortedAndAnOuterReadOrdersTheNodeThatHoldsIt() {
        // The then-branch reads 'k' from the enclosing graph, whose producer is written after the If.
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(OrtTestSupport.node("Neg", "then_neg", List.of("t0"), List.of("t")))
                .addNode(OrtTestSupport.node("Relu", "then_relu", List.of("k"), List.of("t0")))
                .addOutput(tensor("t", FLOAT, 2)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(OrtTestSupport.node("Identity", "else_id", List.of("x"), List.of("e")))
                .addOutput(tensor("e", FLOAT, 2)).build();
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).input(tensor("c", 9)).outputs("y")
                .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", then), graph("else_branch", otherwise))
                .node("Sigmoid", "k_of_x", List.of("x"), List.of("k"))
                .build();
        Model out = SortNodes.apply(in);
        ModelChecker.checkForRuntime(out);
        assertEquals(List.of("k_of_x", "if"), names(out.graph()));
        GraphProto thenOut = Nodes.attr(out.graph().getNode(1), "then_branch").orElseThrow().getG();
        assertEquals(List.of("then_relu", "then_neg"), names(thenOut));
    }

    @Test
    void aCycleIsLeftForTheCheckerToReport() {
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Add", "p", List.of("x", "q_out"), List.of("p_out"))
                .node("Relu", "q", List.of("p_out"), List.of("q_out"))
                .node("Identity", "out", List.of("p_out"), List.of("y"))
                .build();
        assertSame(in, SortNodes.apply(in));
        QwtException e = assertThrows(QwtException.class, () -> ModelChecker.check(in));
        assertEquals(true, e.getMessage().contains("cycle"), e.getMessage());
    }

    private static AttributeProto graph(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }
}
