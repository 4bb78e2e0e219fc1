package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
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

/** The small prepare passes for untidy graphs, each checked structurally and, where it computes, against ORT. */
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
    void constantChainsFoldExactlyAsOrtComputesThem() {
        long[] seq = new long[24];
        for (int i = 0; i < seq.length; i++) {
            seq[i] = i * 7 - 50;
        }
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 3, 4, 2)).input(tensor("z", FLOAT, 2, 3, 4))
                .outputs("y", "u")
                .init(iota("a", 2, 3, 4))
                .init(Tensors.int64Tensor("shape", new long[] {3}, new long[] {0, -1, 2}))
                .init(Tensors.int64Tensor("ints", new long[] {4, 2, 3}, seq))
                // a [2,3,4] → Transpose(2,0,1) → [4,2,3] → Reshape(0,-1,2) → [4,3,2] → Transpose() → [2,3,4] → Identity
                .node("Transpose", "t1", List.of("a"), List.of("at"), Nodes.intsAttribute("perm", 2, 0, 1))
                .node("Reshape", "r1", List.of("at", "shape"), List.of("ar"))
                .node("Transpose", "t2", List.of("ar"), List.of("art"))
                .node("Identity", "i1", List.of("art"), List.of("c"))
                .node("Add", "add", List.of("z", "c"), List.of("u"))
                // int64 [4,2,3] → Transpose(1,2,0) → [2,3,4] → Cast to float → Transpose(1,2,0) → [3,4,2]
                .node("Transpose", "t3", List.of("ints"), List.of("it"), Nodes.intsAttribute("perm", 1, 2, 0))
                .node("Cast", "c1", List.of("it"), List.of("itf"), Nodes.intAttribute("to", FLOAT))
                .node("Transpose", "t4", List.of("itf"), List.of("k"), Nodes.intsAttribute("perm", 1, 2, 0))
                .node("Mul", "mul", List.of("x", "k"), List.of("y"))
                .build();
        PassResult r = new FoldConstantChains().run(in);
        assertTrue(r.changed());
        Model out = new RemoveUnusedInitializers().run(r.model()).model();
        ModelChecker.checkForRuntime(out);
        assertEquals(List.of("Add", "Mul"), OrtTestSupport.opTypes(out));
        assertEquals(List.of("c", "k"), out.graph().getInitializerList().stream().map(TensorProto::getName).sorted()
                .toList());
        Random rnd = new Random(1);
        assertSameOutputs(in, out, Map.of("x", randomFloats(rnd, 3, 4, 2), "z", randomFloats(rnd, 2, 3, 4)), 0);
    }

    @Test
    void nodesReadingARuntimeValueOrWritingAGraphOutputStay() {
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2, 3)).outputs("y", "w_t")
                .init(iota("w", 3, 2))
                .node("Transpose", "tx", List.of("x"), List.of("xt"))
                .node("Transpose", "tw", List.of("w"), List.of("w_t"))
                .node("Add", "add", List.of("xt", "w"), List.of("y"))
                .node("Cast", "to_int", List.of("w"), List.of("w_int"), Nodes.intAttribute("to", INT64))
                .build();
        PassResult r = new FoldConstantChains().run(in);
        assertFalse(r.changed());
        assertSame(in, r.model());
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
    void unusedInitializersGoButThoseASubgraphReadsStay() {
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(OrtTestSupport.node("Add", "inner", List.of("x", "read_inside"), List.of("t")))
                .addOutput(tensor("t", FLOAT, 2)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(OrtTestSupport.node("Identity", "inner2", List.of("x"), List.of("e")))
                .addOutput(tensor("e", FLOAT, 2)).build();
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).input(tensor("c", 9)).outputs("y")
                .init(iota("read_inside", 2)).init(iota("unused", 5))
                .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", then), graph("else_branch", otherwise))
                .build();
        Model out = new RemoveUnusedInitializers().run(in).model();
        assertEquals(List.of("read_inside"), out.graph().getInitializerList().stream().map(TensorProto::getName).toList());
        ModelChecker.checkForRuntime(out);
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
