package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.TestModels;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/** The structural rules of {@link ModelChecker}, each broken once on the example model. */
class ModelCheckerTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    private static Model edit(UnaryOperator<GraphProto.Builder> graph) {
        ModelProto p = ExampleData.model().proto();
        return new Model(p.toBuilder().setGraph(graph.apply(p.getGraph().toBuilder())).build());
    }

    private static void rejects(Model m, String... parts) {
        QwtException e = assertThrows(QwtException.class, () -> ModelChecker.check(m));
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' not in: " + e.getMessage());
        }
    }

    @Test
    void acceptsTheExampleAndTheTestModels() {
        assertDoesNotThrow(() -> ModelChecker.check(ExampleData.model()));
        assertDoesNotThrow(() -> ModelChecker.check(TestModels.mlp(1)));
    }

    @Test
    void nodesOutOfOrderAreNotACycle() {
        // relu_1 moved to the end: conv_2 reads r1 before relu_1 produces it, but the graph has no cycle.
        rejects(edit(g -> {
            NodeProto relu = g.getNode(1);
            g.removeNode(1);
            return g.addNode(relu);
        }), "not in topological order", "conv_2", "'r1'", "relu_1");
    }

    @Test
    void aLongerCycleIsNamedNodeByNode() {
        // conv_0 reads r2: the cycle in data-flow order, starting where the search closed it.
        rejects(edit(g -> g.setNode(0, g.getNode(0).toBuilder().setInput(0, "r2"))),
                "has a cycle", "'relu_1' -> 'conv_2' -> 'relu_3' -> 'conv_0' -> 'relu_1'");
    }

    @Test
    void duplicateGraphInputsOutputsInitializersAndNodeNames() {
        rejects(edit(g -> g.addInput(g.getInput(0))), "input name 'x' is used twice");
        rejects(edit(g -> g.addOutput(g.getOutput(0))), "output name 'logits' is listed twice");
        rejects(edit(g -> g.addInitializer(g.getInitializer(0))), "initializer 'w1' is defined twice");
        rejects(edit(g -> g.setNode(1, g.getNode(1).toBuilder().setName("conv_0"))), "node name 'conv_0'");
        rejects(edit(g -> g.setNode(1, g.getNode(1).toBuilder().setOutput(0, "w2"))), "'w2'",
                "defined more than once", "as an input or initializer");
    }

    @Test
    void graphOutputNeverProduced() {
        rejects(edit(g -> g.addOutput(OrtTestSupport.tensor("nowhere", F, 1))), "'nowhere' is never produced");
    }

    @Test
    void initializerPayloads() {
        rejects(edit(g -> g.setInitializer(0, g.getInitializer(0).toBuilder().setDataType(99))),
                "'w1'", "unknown element type 99");
        rejects(edit(g -> g.setInitializer(0, g.getInitializer(0).toBuilder().setDims(0, -8))),
                "'w1'", "negative dimension");
        rejects(edit(g -> g.setInitializer(0, g.getInitializer(0).toBuilder().clearDims()
                .addDims(1L << 62).addDims(1L << 62))), "'w1'", "overflows");
        rejects(edit(g -> g.setInitializer(0, g.getInitializer(0).toBuilder().clearDims().addDims(1L << 61))),
                "'w1'", "overflows");
        rejects(edit(g -> g.setInitializer(0, g.getInitializer(0).toBuilder().clearRawData().addFloatData(1f))),
                "'w1'", "holds 1 values", "need 216");
        // A string tensor is checked by its count of strings.
        TensorProto strings = TensorProto.newBuilder().setName("labels").setDataType(TensorProto.DataType.STRING_VALUE)
                .addDims(2).addStringData(ByteString.copyFromUtf8("a")).build();
        rejects(edit(g -> g.addInitializer(strings)), "'labels'", "holds 1 values", "need 2");
        assertDoesNotThrow(() -> ModelChecker.check(edit(g -> g.addInitializer(strings.toBuilder()
                .addStringData(ByteString.copyFromUtf8("b"))))));
    }

    @Test
    void constantNodeTensorsAreCheckedToo() {
        TensorProto bad = TensorProto.newBuilder().setName("k").setDataType(F).addDims(4)
                .setRawData(ByteString.copyFrom(new byte[3])).build();
        rejects(edit(g -> g.addNode(NodeProto.newBuilder().setOpType("Constant").setName("const_k").addOutput("k")
                .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
                        .setT(bad)))), "Constant node 'const_k'", "3 bytes of raw data");
    }

    @Test
    void initializerAgreesWithTheGraphInputItDefaults() {
        rejects(edit(g -> g.addInput(OrtTestSupport.tensor("b1", F, 9))), "'b1'", "dims [8]", "shape [9]");
        rejects(edit(g -> g.addInput(OrtTestSupport.tensor("b1", TensorProto.DataType.INT64_VALUE, 8))), "'b1'",
                "element type 1", "declares 7");
        assertDoesNotThrow(() -> ModelChecker.check(edit(g -> g.addInput(OrtTestSupport.tensor("b1", F, -1)))));
    }

    @Test
    void opsetImports() {
        ModelProto p = ExampleData.model().proto();
        rejects(new Model(p.toBuilder().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("ai.onnx")
                .setVersion(13)).build()), "more than once");
        rejects(new Model(p.toBuilder().setOpsetImport(0, OperatorSetIdProto.newBuilder().setVersion(0)).build()),
                "version 0");
        rejects(new Model(p.toBuilder().setOpsetImport(0, OperatorSetIdProto.newBuilder().setDomain("ai.onnx.ml")
                .setVersion(3)).build()), "Conv node 'conv_0'", "does not import");
        rejects(new Model(p.toBuilder().setIrVersion(0).build()), "IR version 0");
        // A node of a domain the model defines as a local function is fine.
        ModelProto withFunction = p.toBuilder()
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("local").setVersion(1))
                .addFunctions(dev.qwtonnx.onnx.FunctionProto.newBuilder().setDomain("local").setName("Twice"))
                .setGraph(p.getGraph().toBuilder().setNode(1, p.getGraph().getNode(1).toBuilder().setDomain("local")
                        .setOpType("Twice"))).build();
        assertDoesNotThrow(() -> ModelChecker.check(new Model(withFunction)));
    }

    @Test
    void customDomainsPassTheStructuralCheckButNotTheRuntimeCheck() {
        ModelProto p = ExampleData.model().proto();
        Model custom = new Model(p.toBuilder().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.acme")
                .setVersion(1)).setGraph(p.getGraph().toBuilder().setNode(1, p.getGraph().getNode(1).toBuilder()
                        .setDomain("com.acme"))).build());
        assertDoesNotThrow(() -> ModelChecker.check(custom));
        QwtException e = assertThrows(QwtException.class, () -> ModelChecker.checkForRuntime(custom));
        assertTrue(e.getMessage().contains("Relu node 'relu_1' is an operator of domain 'com.acme'"), e.getMessage());
        Model microsoft = new Model(custom.proto().toBuilder().setOpsetImport(1, OperatorSetIdProto.newBuilder()
                .setDomain("com.microsoft").setVersion(1)).setGraph(custom.graph().toBuilder().setNode(1,
                        custom.graph().getNode(1).toBuilder().setDomain("com.microsoft"))).build());
        assertDoesNotThrow(() -> ModelChecker.checkForRuntime(microsoft));
    }

    @Test
    void subgraphsSeeOuterNamesAndAreCheckedThemselves() {
        GraphProto.Builder body = GraphProto.newBuilder().setName("then")
                .addNode(NodeProto.newBuilder().setOpType("Relu").setName("inner").addInput("r1").addOutput("t"))
                .addOutput(OrtTestSupport.tensor("t", F));
        UnaryOperator<GraphProto.Builder> withIf = g -> g.addNode(NodeProto.newBuilder().setOpType("If").setName("if")
                .addInput("cond").addOutput("branch").addAttribute(AttributeProto.newBuilder().setName("then_branch")
                        .setType(AttributeProto.AttributeType.GRAPH).setG(body)))
                .addInput(OrtTestSupport.tensor("cond", TensorProto.DataType.BOOL_VALUE));
        assertDoesNotThrow(() -> ModelChecker.check(edit(withIf)));
        body.setNode(0, body.getNode(0).toBuilder().setInput(0, "ghost"));
        rejects(edit(withIf), "If node 'if' attribute 'then_branch'", "inner", "'ghost'");
    }

    /** A chain of 20,000 nodes with a cycle at its end: the search for it must not overflow the stack. */
    @Test
    void deepGraphsDoNotOverflowTheStack() {
        GraphProto.Builder g = GraphProto.newBuilder().setName("chain").addInput(OrtTestSupport.tensor("x", F, 1));
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            g.addNode(NodeProto.newBuilder().setOpType("Relu").setName("n" + i).addInput(i == 0 ? "t" + (n - 1)
                    : "t" + (i - 1)).addOutput("t" + i));
        }
        g.addOutput(OrtTestSupport.tensor("t" + (n - 1), F, 1));
        Model m = new Model(ModelProto.newBuilder().setIrVersion(8).addOpsetImport(OperatorSetIdProto.newBuilder()
                .setVersion(13)).setGraph(g).build());
        rejects(m, "has a cycle", "'n0'", "'n19999'");
    }
}
