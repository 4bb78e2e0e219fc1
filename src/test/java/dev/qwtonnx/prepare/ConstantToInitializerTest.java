package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.anyFloat;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.PassTestCase;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Constant nodes become initializers of the same name; outputs stay the same in ORT (bit for bit). */
class ConstantToInitializerTest extends PassTestCase {
    @Override
    protected Pass pass() {
        return new ConstantToInitializer();
    }

    private static AttributeProto graph(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    @Test
    void everyValueAttributeBecomesAnInitializer() {
        float[] w = new float[12];
        for (int i = 0; i < w.length; i++) {
            w[i] = i * 0.1f - 0.5f;
        }
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 2, 4)).outputs("y")
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
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 2, 4)).outputs("y")
                        .init(Tensors.floatTensor("w", new long[] {4, 3}, w))
                        .init(Tensors.floatTensor("k", new long[0], new float[] {2f}))
                        .init(Tensors.floatTensor("v", new long[] {3}, new float[] {0.5f, -1f, 2f}))
                        .init(Tensors.int64Tensor("shape", new long[] {2}, new long[] {3, 2}))
                        .init(Tensors.int64Tensor("i", new long[0], new long[] {1}))
                        .node("MatMul", "mm", List.of("x", "w"), List.of("m"))
                        .node("Mul", "mul", List.of("m", "k"), List.of("mk"))
                        .node("Add", "add", List.of("mk", "v"), List.of("a"))
                        .node("Reshape", "reshape", List.of("a", "shape"), List.of("r"))
                        .node("Gather", "gather", List.of("r", "i"), List.of("y"))
                        .build());
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
        TensorProto c = Tensors.floatTensor("", new long[] {3}, new float[] {1f, -2f, 3f});
        Map<String, HostTensor> taken = Map.of("x", randomFloats(new Random(2), 3), "cond", bool(true));
        Map<String, HostTensor> notTaken = Map.of("x", randomFloats(new Random(2), 3), "cond", bool(false));
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 3)).input(tensor("cond", DataType.BOOL.code)).outputs("y")
                        .node("Constant", "c_node", List.of(), List.of("c"), Nodes.tensorAttribute("value", c))
                        .node("If", "if", List.of("cond"), List.of("y"), graph("then_branch", thenBranch),
                                graph("else_branch", elseBranch))
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 3)).input(tensor("cond", DataType.BOOL.code)).outputs("y")
                        .init(c.toBuilder().setName("c").build())
                        .node("If", "if", List.of("cond"), List.of("y"), graph("then_branch", thenBranch),
                                graph("else_branch", elseBranch))
                        .build(),
                taken, notTaken);
    }

    private static HostTensor bool(boolean b) {
        return new HostTensor(DataType.BOOL, new long[0], ByteBuffer.wrap(new byte[] {(byte) (b ? 1 : 0)}));
    }

    @Test
    void aConstantThatIsAGraphOutputStaysANode() {
        testSame(new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y", "c")
                .node("Constant", "c_node", List.of(), List.of("c"), Nodes.floatAttribute("value_float", 3f))
                .node("Mul", "mul", List.of("x", "c"), List.of("y"))
                .build());
    }

    /** Before IR version 4 every initializer had to be a graph input as well. */
    @Test
    void aModelBeforeIr4KeepsItsConstants() {
        testSame(new ModelBuilder(13).irVersion(3).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Constant", "c_node", List.of(), List.of("c"), Nodes.floatAttribute("value_float", 3f))
                .node("Mul", "mul", List.of("x", "c"), List.of("y"))
                .build());
    }

    @Test
    void aModelWithoutConstantsIsReturnedAsIs() {
        testSame(new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("y")).build());
    }
}
