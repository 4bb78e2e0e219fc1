package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import org.junit.jupiter.api.Test;

class UntouchedWeightsTest {
    /**
     * An LSTM's weights and ORT's fused attention's are named with their bytes; a small transposed convolution is
     * not, nor the MatMul the tool quantizes.
     */
    @Test
    void operatorsWhoseWeightsStayFloatAreNamedWithTheirBytes() {
        ModelBuilder b = new ModelBuilder(13).input("x", TensorProto.DataType.FLOAT_VALUE, 5, 1, 64).outputs("y");
        int hidden = 64;
        String w = b.init("w", new long[] {1, 4 * hidden, 64}, new float[4 * hidden * 64]);
        String r = b.init("r", new long[] {1, 4 * hidden, hidden}, new float[4 * hidden * hidden]);
        b.node(NodeProto.newBuilder().setOpType("LSTM").setName("lstm").addAllInput(List.of("x", w, r)).addOutput("h")
                .addAttribute(dev.qwtonnx.model.Nodes.intAttribute("hidden_size", hidden)).build());
        String up = b.init("up", new long[] {1, 1, 4}, new float[4]);
        b.node("ConvTranspose", List.of("h", up), "t");
        String qkv = b.init("qkv", new long[] {128, 384}, new float[128 * 384]);
        b.node(NodeProto.newBuilder().setOpType("Attention").setDomain("com.microsoft").setName("att")
                .addAllInput(List.of("t", qkv)).addOutput("a").build());
        String m = b.init("m", new long[] {64, 64}, new float[64 * 64]);
        b.node("MatMul", List.of("a", m), "y");
        // The LSTM's 2·4·64·64 floats, 131 kB; the attention's 128·384, 197 kB; the transposed convolution's 16 bytes.
        assertEquals("weights of operators qwt-onnx does not quantize stay float: 1 LSTM node (0.1 MB), "
                + "1 com.microsoft Attention node (0.2 MB)" + UntouchedWeights.FUSED_HINT, UntouchedWeights.note(b.build()));
        assertEquals(java.util.List.of("1 LSTM node (0.1 MB)", "1 com.microsoft Attention node (0.2 MB)"),
                UntouchedWeights.groups(b.build()));
        ModelBuilder plain = new ModelBuilder(13).input("x", TensorProto.DataType.FLOAT_VALUE, 1, 64).outputs("y");
        plain.node("MatMul", List.of("x", plain.init("m", new long[] {64, 64}, new float[64 * 64])), "y");
        assertEquals("", UntouchedWeights.note(plain.build()));
    }
}
