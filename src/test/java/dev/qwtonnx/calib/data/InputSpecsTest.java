package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.List;
import org.junit.jupiter.api.Test;

class InputSpecsTest {
    static TensorShapeProto.Dimension dim(long v) {
        return TensorShapeProto.Dimension.newBuilder().setDimValue(v).build();
    }

    static TensorShapeProto.Dimension dim(String symbol) {
        return TensorShapeProto.Dimension.newBuilder().setDimParam(symbol).build();
    }

    static ValueInfoProto input(String name, DataType type, TensorShapeProto.Dimension... dims) {
        TypeProto.Tensor.Builder t = TypeProto.Tensor.newBuilder().setElemType(type.code);
        if (dims != null) {
            t.setShape(TensorShapeProto.newBuilder().addAllDim(List.of(dims)));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(t)).build();
    }

    @Test
    void graphInputsThatAreNotInitializers() {
        GraphProto g = GraphProto.newBuilder()
                .addInput(input("input_ids", DataType.INT64, dim(1), dim("sequence")))
                .addInput(input("weight", DataType.FLOAT, dim(4))) // an old export listing an initializer as input
                .addInput(input("scale", DataType.FLOAT, (TensorShapeProto.Dimension[]) null))
                .addInput(input("unknown_dim", DataType.FLOAT16, TensorShapeProto.Dimension.getDefaultInstance()))
                .addInitializer(Tensors.floatTensor("weight", new long[] {4}, new float[4]))
                .build();
        List<InputSpec> specs = InputSpecs.of(g);
        assertEquals(List.of("input_ids", "scale", "unknown_dim"), specs.stream().map(InputSpec::name).toList());
        assertEquals(DataType.INT64, specs.get(0).type());
        assertArrayEquals(new long[] {1, -1}, specs.get(0).shape());
        assertEquals("[1, ?]", specs.get(0).shapeText());
        assertNull(specs.get(1).shape());
        assertFalse(specs.get(1).rankKnown());
        assertArrayEquals(new long[] {-1}, specs.get(2).shape());
        assertEquals(new InputSpec("input_ids", DataType.INT64, new long[] {1, -1}), specs.get(0));
    }

    @Test
    void nonTensorInputsAreNamedErrors() {
        GraphProto g = GraphProto.newBuilder().addInput(ValueInfoProto.newBuilder().setName("seq")
                .setType(TypeProto.newBuilder().setSequenceType(TypeProto.Sequence.getDefaultInstance()))).build();
        assertOneLine(assertThrows(QwtException.class, () -> InputSpecs.of(g)), "model input 'seq' is not a tensor");
    }

    /** A model fed strings (libonnx-testdata's string normalizers) is refused by the type's name, not its code. */
    @Test
    void anInputOfATypeSamplesCannotHoldIsNamedInTheError() {
        for (int code : new int[] {8, 99}) {
            GraphProto g = GraphProto.newBuilder().addInput(ValueInfoProto.newBuilder().setName("x").setType(TypeProto
                    .newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(code)))).build();
            assertEquals("model input 'x' holds " + (code == 8 ? "string" : "element type 99")
                    + " tensors; calibration samples can only be numeric or boolean",
                    assertThrows(QwtException.class, () -> InputSpecs.of(g)).getMessage());
        }
    }
}
