package dev.qwtonnx.robust;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model whose weights are all in an LSTM is refused with a line that says where its weights are. */
class RecurrentOnlyCliTest {
    @TempDir
    Path tmp;

    @Test
    void aModelOfRecurrentCellsOnlySaysSo() throws Exception {
        ModelBuilder b = new ModelBuilder(13).input("x", TensorProto.DataType.FLOAT_VALUE, 1, 3, 16, 16).outputs("y");
        b.init(Tensors.int64Tensor("shape", new long[] {3}, new long[] {3, 1, 256}));
        String seq = b.node("Reshape", List.of("x", "shape"), "seq");
        int hidden = 64;
        String w = b.randomInit("w", 0.05, 1, 4 * hidden, 256);
        String r = b.randomInit("r", 0.05, 1, 4 * hidden, hidden);
        b.node(NodeProto.newBuilder().setOpType("LSTM").setName("lstm").addAllInput(List.of(seq, w, r)).addOutput("y")
                .addAttribute(Nodes.intAttribute("hidden_size", hidden)).build());
        Model m = b.build();
        Path in = tmp.resolve("lstm.onnx");
        Files.write(in, m.proto().toByteArray());
        Path out = Files.createDirectories(tmp.resolve("out"));
        CliRun.of(in.toString(), out.resolve("o.onnx").toString(), "--calib", ExampleData.DIR.resolve("calib").toString())
                .assertUserError(out, "no Conv, MatMul or Gemm layer", "its weights are in operators qwt-onnx does not "
                        + "quantize: 1 LSTM node (0.3 MB)");
    }
}
