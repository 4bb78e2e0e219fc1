package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The small prepare passes for untidy graphs, each checked structurally and, where it computes, against ORT
 * (FoldConstantChains and RemoveUnusedInitializers have golden tests of their own).
 */
class GraphHygienePassesTest {
    private static TensorProto iota(String name, long... dims) {
        int n = 1;
        for (long d : dims) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i * 0.25f - 3;
        }
        return Tensors.floatTensor(name, dims, v);
    }

    @Test
    void inputsShadowingInitializersBecomeConstantsOfAnIr4Model() {
        Model in = new ModelBuilder(13).irVersion(3).input(tensor("x", FLOAT, 2, 3)).input(tensor("w", FLOAT, 3, 2))
                .outputs("y").init(iota("w", 3, 2))
                .node("MatMul", "mm", List.of("x", "w"), List.of("y")).build();
        PassResult r = new InitializerInputs().run(in);
        assertTrue(r.changed());
        assertEquals(List.of("x"), r.model().graph().getInputList().stream().map(v -> v.getName()).toList());
        assertEquals(4, r.model().proto().getIrVersion());
        assertSameOutputs(in, r.model(), Map.of("x", randomFloats(new Random(2), 2, 3)), 0);
        assertFalse(new InitializerInputs().run(r.model()).changed());
    }

    private static AttributeProto graph(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    @Test
    void valueInfoIsDroppedEverywhereAndNamesMadeUniqueInSubgraphs() {
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(OrtTestSupport.node("Relu", "dup", List.of("x"), List.of("t0")))
                .addNode(OrtTestSupport.node("Neg", "dup", List.of("t0"), List.of("t")))
                .addValueInfo(tensor("t0", FLOAT, 7, 7)).addOutput(tensor("t", FLOAT, 2)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(OrtTestSupport.node("Identity", "", List.of("x"), List.of("e")))
                .addOutput(tensor("e", FLOAT, 2)).build();
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).input(tensor("c", 9)).outputs("y")
                .node("If", "dup", List.of("c"), List.of("y"), graph("then_branch", then), graph("else_branch", otherwise))
                .build();
        Model stale = in.withGraph(in.graph().toBuilder().addValueInfo(tensor("y", INT64, 9)).build());
        Model out = new DropValueInfo().run(stale).model();
        Model named = NameNodes.apply(out);
        NodeProto ifNode = named.graph().getNode(0);
        GraphProto thenOut = Nodes.attr(ifNode, "then_branch").orElseThrow().getG();
        assertEquals(0, named.graph().getValueInfoCount());
        assertEquals(0, thenOut.getValueInfoCount());
        List<String> names = List.of(ifNode.getName(), thenOut.getNode(0).getName(), thenOut.getNode(1).getName(),
                Nodes.attr(ifNode, "else_branch").orElseThrow().getG().getNode(0).getName());
        assertEquals(4, names.stream().distinct().count(), names.toString());
        assertTrue(names.stream().noneMatch(String::isEmpty), names.toString());
        assertEquals(1, count(named, "If"));
        ModelChecker.checkForRuntime(named);
    }
}
