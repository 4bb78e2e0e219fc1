package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.anyFloat;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Constant nodes become initializers of the same name; outputs stay the same in ORT (bit for bit). */
class ConstantToInitializerTest {
    private static final double EXACT = 0;

    private static TensorProto initializer(Model m, String name) {
        return m.graph().getInitializerList().stream().filter(t -> t.getName().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void everyValueAttributeBecomesAnInitializer() {
        float[] w = new float[12];
        for (int i = 0; i < w.length; i++) {
            w[i] = i * 0.1f - 0.5f;
        }
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2, 4)).outputs("y")
                .node("Constant", "c_w", List.of(), List.of("w"),
                        Nodes.tensorAttribute("value", Tensors.floatTensor("some_other_name", new long[] {4, 3}, w)))
                .node("Constant", "c_k", List.of(), List.of("k"), Nodes.floatAttribute("value_float", 2f))
                .node("Constant", "c_v", List.of(), List.of("v"),
                        AttributeProto.newBuilder().setName("value_floats").setType(AttributeProto.AttributeType.FLOATS)
                                .addFloats(0.5f).addFloats(-1f).addFloats(2f).build())
                .node("Constant", "c_shape", List.of(), List.of("shape"), Nodes.intsAttribute("value_ints", 3, 2))
                .node("Constant", "c_i", List.of(), List.of("i"), Nodes.intAttribute("value_int", 1))
                .node("MatMul", "mm", List.of("x", "w"), List.of("m"))
                .node("Mul", "mul", List.of("m", "k"), List.of("mk"))
                .node("Add", "add", List.of("mk", "v"), List.of("a"))
                .node("Reshape", "reshape", List.of("a", "shape"), List.of("r"))
                .node("Gather", "gather", List.of("r", "i"), List.of("y"))
                .build();
        PassResult r = new ConstantToInitializer().run(in);
        assertTrue(r.changed());
        Model out = r.model();
        ModelChecker.check(out);
        assertEquals(0, count(out, "Constant"));
        assertEquals(List.of("w", "k", "v", "shape", "i"),
                out.graph().getInitializerList().stream().map(TensorProto::getName).toList());
        assertArrayEquals(new long[0], Tensors.dims(initializer(out, "k")));
        assertArrayEquals(new float[] {0.5f, -1f, 2f}, Tensors.floats(initializer(out, "v")));
        assertArrayEquals(new long[] {3}, Tensors.dims(initializer(out, "v")));
        assertArrayEquals(new long[] {3, 2}, Tensors.longs(initializer(out, "shape")));
        assertEquals(DataType.INT64.code, initializer(out, "i").getDataType());
        assertArrayEquals(new long[0], Tensors.dims(initializer(out, "i")));
        assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(1), 2, 4)), EXACT);
    }

    /** An If branch reading a top-level Constant by name reads the initializer afterwards. */
    @Test
    void subgraphsStillSeeATopLevelConstant() {
        GraphProto thenBranch = GraphProto.newBuilder().setName("then")
                .addNode(OrtTestSupport.node("Add", "then_add", List.of("x", "c"), List.of("t_out")))
                .addOutput(anyFloat("t_out")).build();
        GraphProto elseBranch = GraphProto.newBuilder().setName("else")
                .addNode(OrtTestSupport.node("Mul", "else_mul", List.of("x", "c"), List.of("e_out")))
                .addOutput(anyFloat("e_out")).build();
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 3)).input(tensor("cond", DataType.BOOL.code))
                .outputs("y")
                .node("Constant", "c_node", List.of(), List.of("c"),
                        Nodes.tensorAttribute("value", Tensors.floatTensor("", new long[] {3}, new float[] {1f, -2f, 3f})))
                .node("If", "if", List.of("cond"), List.of("y"),
                        AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH)
                                .setG(thenBranch).build(),
                        AttributeProto.newBuilder().setName("else_branch").setType(AttributeProto.AttributeType.GRAPH)
                                .setG(elseBranch).build())
                .build();
        Model out = new ConstantToInitializer().run(in).model();
        ModelChecker.check(out);
        assertEquals(0, count(out, "Constant"));
        for (boolean cond : new boolean[] {true, false}) {
            HostTensor c = new HostTensor(DataType.BOOL, new long[0], ByteBuffer.wrap(new byte[] {(byte) (cond ? 1 : 0)}));
            assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(2), 3), "cond", c), EXACT);
        }
    }

    @Test
    void aConstantThatIsAGraphOutputStaysANode() {
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y", "c")
                .node("Constant", "c_node", List.of(), List.of("c"), Nodes.floatAttribute("value_float", 3f))
                .node("Mul", "mul", List.of("x", "c"), List.of("y"))
                .build();
        PassResult r = new ConstantToInitializer().run(in);
        assertFalse(r.changed());
        assertSame(in, r.model());
    }

    @Test
    void aModelWithoutConstantsIsReturnedAsIs() {
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("y")).build();
        assertSame(in, new ConstantToInitializer().run(in).model());
    }
}
