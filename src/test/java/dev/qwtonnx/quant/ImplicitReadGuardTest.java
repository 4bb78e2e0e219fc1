package dev.qwtonnx.quant;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.node;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A Q/DQ pair whose DequantizeLinear reaches, through a Transpose, a tensor an If branch reads from
 * outside: ORT's QDQ propagation would abort the process making a session of it (Silero VAD v4).
 */
class ImplicitReadGuardTest {
    /** x → Q → DQ → Transpose → t, read inside both branches of an If; with {@code otherReader}, a Relu reads DQ too. */
    private static Model model(boolean otherReader) {
        GraphProto then = GraphProto.newBuilder().setName("then").addNode(node("Identity", "keep", List.of("t"), List.of("a")))
                .addOutput(tensor("a", FLOAT, 1, 4, 2)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else").addNode(node("Neg", "neg", List.of("t"), List.of("b")))
                .addOutput(tensor("b", FLOAT, 1, 4, 2)).build();
        NodeProto ifNode = node("If", "branch", List.of("c"), List.of("y"),
                AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH).setG(then).build(),
                AttributeProto.newBuilder().setName("else_branch").setType(AttributeProto.AttributeType.GRAPH).setG(otherwise)
                        .build());
        OrtTestSupport.ModelBuilder b = quantizedTranspose("t").input(tensor("c", TensorProto.DataType.BOOL_VALUE))
                .output("y", FLOAT, 1, 4, 2).node(ifNode);
        if (otherReader) {
            b.node("Relu", "relu", List.of("xd"), List.of("r")).output("r", FLOAT, 1, 2, 4);
        }
        return b.build();
    }

    private static NodeProto named(Model m, String name) {
        return m.graph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElse(null);
    }

    @Test
    void theOpReachingTheBranchReadsTheFloatTensorAndAnUnreadPairGoes() {
        PassResult r = new ImplicitReadGuard().run(model(false));
        assertTrue(r.changed());
        assertEquals("x", named(r.model(), "tr").getInput(0));
        assertEquals(null, named(r.model(), "dq"));
        assertEquals(null, named(r.model(), "q"));
        assertFalse(r.model().graph().getInitializerList().stream().anyMatch(t -> t.getName().equals("s")));
        // ORT makes a session of it (before, it aborted the process) and the branch sees x transposed.
        Map<String, HostTensor> out = OrtTestSupport.run(r.model(), Map.of("x",
                HostTensor.ofFloats(new long[] {1, 2, 4}, new float[] {1, 2, 3, 4, 5, 6, 7, 8}),
                "c", new HostTensor(dev.qwtonnx.model.DataType.BOOL, new long[0], java.nio.ByteBuffer.wrap(new byte[] {1}))));
        assertEquals(5f, out.get("y").toFloats()[1]);
    }

    @Test
    void aPairOtherOpsStillReadStays() {
        PassResult r = new ImplicitReadGuard().run(model(true));
        assertTrue(r.changed());
        assertEquals("x", named(r.model(), "tr").getInput(0));
        assertEquals("xd", named(r.model(), "relu").getInput(0));
        assertTrue(named(r.model(), "dq") != null && named(r.model(), "q") != null);
    }

    /** x → Q → DQ → Transpose → y: no subgraph reads anything. */
    @Test
    void withoutSubgraphsNothingChanges() {
        Model m = quantizedTranspose("y").output("y", FLOAT, 1, 4, 2).build();
        assertFalse(new ImplicitReadGuard().run(m).changed());
    }

    /** x[1,2,4] → QuantizeLinear q → DequantizeLinear dq (xd) → Transpose tr → {@code out}. */
    private static OrtTestSupport.ModelBuilder quantizedTranspose(String out) {
        return new OrtTestSupport.ModelBuilder(13).input("x", FLOAT, 1, 2, 4)
                .init(Tensors.floatScalar("s", 0.05f))
                .init(Tensors.uint8Tensor("z", new long[0], new byte[] {(byte) 128}))
                .node("QuantizeLinear", "q", List.of("x", "s", "z"), List.of("xq"))
                .node("DequantizeLinear", "dq", List.of("xq", "s", "z"), List.of("xd"))
                .node("Transpose", "tr", List.of("xd"), List.of(out),
                        AttributeProto.newBuilder().setName("perm").setType(AttributeProto.AttributeType.INTS)
                                .addAllInts(List.of(0L, 2L, 1L)).build());
    }
}
