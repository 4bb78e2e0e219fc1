package dev.qwtonnx.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.List;
import org.junit.jupiter.api.Test;

class TensorFactsTest {
    /** x [batch, seq, 8] (dynamic batch and seq), as a BERT export's hidden states. */
    private static ValueInfoProto input() {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder()
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("seq"))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(8));
        return ValueInfoProto.newBuilder().setName("x").setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor
                .newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(s))).build();
    }

    @Test
    void unsqueezeAndSqueezeAxesGivenAsAnInputSetTheRank() {
        // Opset 13 moved axes from an attribute to an input: MiniLM's attention reshapes are built that way.
        GraphProto g = GraphProto.newBuilder().addInput(input())
                .addInitializer(Tensors.int64Tensor("axes01", new long[] {2}, new long[] {0, 1}))
                .addInitializer(Tensors.int64Tensor("axes0", new long[] {1}, new long[] {0}))
                .addNode(Nodes.node("Unsqueeze", "u", List.of("x", "axes01"), List.of("u_out"), "test"))
                .addNode(Nodes.node("Squeeze", "s", List.of("u_out", "axes0"), List.of("s_out"), "test"))
                .addNode(Nodes.node("Shape", "shape", List.of("s_out"), List.of("shape_out"), "test"))
                .addNode(Nodes.node("Reshape", "r", List.of("x", "shape_out"), List.of("r_out"), "test"))
                .build();
        TensorFacts f = TensorFacts.of(g);
        assertEquals(5, f.rank("u_out"));
        assertEquals(4, f.rank("s_out"));
        assertEquals(4, f.rank("r_out"), "a Reshape to a shape of known length has that rank");
    }

    @Test
    void axesOfUnknownValueLeaveTheRankUnknown() {
        GraphProto g = GraphProto.newBuilder().addInput(input())
                .addNode(Nodes.node("Shape", "shape", List.of("x"), List.of("axes"), "test"))
                .addNode(Nodes.node("Unsqueeze", "u", List.of("x", "axes"), List.of("u_out"), "test"))
                .build();
        assertEquals(-1, TensorFacts.of(g).rank("u_out"));
    }
}
