package dev.qwtonnx.quant;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Random;

/**
 * One quantized MatMul with a bias Add, as the quantizer writes it, for the bias-form passes:
 * x → QuantizeLinear → DequantizeLinear → MatMul 'mm' (weight int8 [16, 4] per column through a
 * DequantizeLinear) → Add 'add' (float bias 'b' [4]) → y.
 */
final class QdqMatMul {
    static final int K = 16;
    static final int N = 4;

    private QdqMatMul() {
    }

    /** The graph with x of the given dims (-1: a named, dynamic dim). */
    static ModelBuilder builder(long... xDims) {
        Random r = new Random(5);
        byte[] w = new byte[K * N];
        for (int i = 0; i < w.length; i++) {
            w[i] = (byte) (r.nextInt(255) - 127);
        }
        float[] ws = new float[N];
        float[] b = new float[N];
        for (int c = 0; c < N; c++) {
            ws[c] = 0.002f + 0.001f * c;
            b[c] = 0.1f * (c - 1.5f);
        }
        return new ModelBuilder(13).input(tensor("x", FLOAT, xDims)).outputs("y")
                .init(Tensors.floatScalar("xs", 0.02f)).init(Tensors.int8Tensor("xzp", new long[0], new byte[1]))
                .init(Tensors.int8Tensor("wq", new long[] {K, N}, w))
                .init(Tensors.floatTensor("ws", new long[] {N}, ws))
                .init(Tensors.int8Tensor("wzp", new long[] {N}, new byte[N]))
                .init(Tensors.floatTensor("b", new long[] {N}, b))
                .node("QuantizeLinear", "xq", List.of("x", "xs", "xzp"), List.of("x_q"))
                .node("DequantizeLinear", "xdq", List.of("x_q", "xs", "xzp"), List.of("x_dq"))
                .node("DequantizeLinear", "wdq", List.of("wq", "ws", "wzp"), List.of("w_dq"),
                        Nodes.intAttribute("axis", 1))
                .node("MatMul", "mm", List.of("x_dq", "w_dq"), List.of("m"))
                .node("Add", "add", List.of("m", "b"), List.of("y"));
    }

    static Model of(long... xDims) {
        return builder(xDims).build();
    }
}
