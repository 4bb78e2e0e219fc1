package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
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

/** Initializers nothing reads go; those a node, a graph output, a subgraph or a graph input names stay. */
class RemoveUnusedInitializersTest extends PassTestCase {
    @Override
    protected Pass pass() {
        return new RemoveUnusedInitializers();
    }

    private static TensorProto floats(String name, float... v) {
        return Tensors.floatTensor(name, new long[] {v.length}, v);
    }

    private static AttributeProto graph(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    @Test
    void anInitializerNothingReadsGoes() {
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y")
                        .init(floats("leftover", 7, 8, 9)).init(floats("b", 1, 2))
                        .node("Add", "add", List.of("x", "b"), List.of("y"))
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y")
                        .init(floats("b", 1, 2))
                        .node("Add", "add", List.of("x", "b"), List.of("y"))
                        .build());
    }

    @Test
    void unusedInitializersGoButThoseASubgraphReadsStay() {
        GraphProto then = GraphProto.newBuilder().setName("then")
                .addNode(OrtTestSupport.node("Add", "inner", List.of("x", "read_inside"), List.of("t")))
                .addOutput(tensor("t", FLOAT, 2)).build();
        GraphProto otherwise = GraphProto.newBuilder().setName("else")
                .addNode(OrtTestSupport.node("Identity", "inner2", List.of("x"), List.of("e")))
                .addOutput(tensor("e", FLOAT, 2)).build();
        HostTensor x = randomFloats(new Random(3), 2);
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 2)).input(tensor("c", DataType.BOOL.code)).outputs("y")
                        .init(floats("read_inside", 1, 2)).init(floats("unused", 1, 2, 3, 4, 5))
                        .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", then),
                                graph("else_branch", otherwise))
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 2)).input(tensor("c", DataType.BOOL.code)).outputs("y")
                        .init(floats("read_inside", 1, 2))
                        .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", then),
                                graph("else_branch", otherwise))
                        .build(),
                Map.of("x", x, "c", bool(true)), Map.of("x", x, "c", bool(false)));
    }

    private static HostTensor bool(boolean b) {
        return new HostTensor(DataType.BOOL, new long[0], ByteBuffer.wrap(new byte[] {(byte) (b ? 1 : 0)}));
    }

    @Test
    void anInitializerThatIsAGraphOutputStays() {
        testSame(new ModelBuilder(13).input(tensor("x", FLOAT, 2)).outputs("y", "w")
                .init(floats("w", 1, 2))
                .node("Relu", "relu", List.of("x"), List.of("y"))
                .build());
    }

    /** An IR 3 model lists its initializers as inputs too (a caller may feed them): those stay. */
    @Test
    void anInitializerThatIsAlsoAGraphInputStays() {
        testSame(new ModelBuilder(13).irVersion(3).input(tensor("x", FLOAT, 2)).input(tensor("w", FLOAT, 2))
                .outputs("y")
                .init(floats("w", 1, 2))
                .node("Relu", "relu", List.of("x"), List.of("y"))
                .build());
    }
}
