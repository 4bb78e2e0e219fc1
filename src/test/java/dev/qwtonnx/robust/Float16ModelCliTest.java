package dev.qwtonnx.robust;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;

import com.google.protobuf.ByteString;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model that computes in float16 is refused with a line that says so, not that it has no layer. */
class Float16ModelCliTest {
    @TempDir
    Path tmp;

    @Test
    void aFloat16ModelIsNamedAsSuch() throws Exception {
        // float32 in and out around a float16 Conv, as a float16 conversion that keeps the I/O types writes it.
        TensorProto w = TensorProto.newBuilder().setName("w").setDataType(TensorProto.DataType.FLOAT16_VALUE)
                .addAllDims(List.of(4L, 3L, 3L, 3L)).setRawData(ByteString.copyFrom(new byte[4 * 27 * 2])).build();
        AttributeProto toHalf = AttributeProto.newBuilder().setName("to").setType(AttributeProto.AttributeType.INT)
                .setI(TensorProto.DataType.FLOAT16_VALUE).build();
        AttributeProto toFloat = toHalf.toBuilder().setI(TensorProto.DataType.FLOAT_VALUE).build();
        Model m = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 3, 16, 16)).outputs("y").init(w)
                .node("Cast", "in_cast", List.of("x"), List.of("xh"), toHalf)
                .node("Conv", "conv", List.of("xh", "w"), List.of("yh"))
                .node("Cast", "out_cast", List.of("yh"), List.of("y"), toFloat)
                .build();
        Path in = tmp.resolve("half.onnx");
        Files.write(in, m.proto().toByteArray());
        Path out = Files.createDirectories(tmp.resolve("out"));
        CliRun.of(in.toString(), out.resolve("o.onnx").toString(), "--calib", ExampleData.DIR.resolve("calib").toString())
                .assertUserError(out, "computes in float16", "float16 weights in 1 of", "float32 model");
    }
}
