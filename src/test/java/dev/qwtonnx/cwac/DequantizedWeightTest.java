package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The weight decoded in one pass is the weight read element by element. */
class DequantizedWeightTest {
    private static void check(TensorProto q, TensorProto scale, TensorProto zero, long axis) {
        GraphEditor g = new GraphEditor(GraphProto.newBuilder().addInitializer(q).addInitializer(scale)
                .addInitializer(zero).build());
        DequantizedWeight w = DequantizedWeight.of(g, q.getName(), scale.getName(), zero.getName(), axis);
        float[] all = w.values();
        assertEquals(w.size(), all.length);
        for (int i = 0; i < all.length; i++) {
            assertEquals(w.get(i), all[i], 0f, "element " + i + " along axis " + axis);
        }
    }

    @Test
    void valuesAreEachElementPerChannelAndPerTensor() {
        Random rnd = new Random(3);
        byte[] b = new byte[4 * 6 * 3];
        rnd.nextBytes(b);
        long[] dims = {4, 6, 3};
        float[] s4 = {0.5f, 0.25f, 2f, 0.125f};
        float[] s6 = {1f, 2f, 3f, 4f, 5f, 6f};
        // Channels outermost (a Conv's weight), innermost-but-one and innermost (a MatMul's; signed, unsigned, by a
        // negative axis), and one scale for all.
        check(Tensors.int8Tensor("q", dims, b), Tensors.floatTensor("s", new long[] {4}, s4),
                Tensors.int8Tensor("z", new long[] {4}, new byte[] {0, 1, -2, 3}), 0);
        check(Tensors.int8Tensor("q", dims, b), Tensors.floatTensor("s", new long[] {6}, s6),
                Tensors.int8Tensor("z", new long[] {6}, new byte[6]), 1);
        check(Tensors.uint8Tensor("q", dims, b), Tensors.floatTensor("s", new long[] {3}, new float[] {0.1f, 0.2f, 0.3f}),
                Tensors.uint8Tensor("z", new long[] {3}, new byte[] {(byte) 128, 0, (byte) 255}), 2);
        check(Tensors.int8Tensor("q", dims, b), Tensors.floatTensor("s", new long[] {3}, new float[] {0.1f, 0.2f, 0.3f}),
                Tensors.int8Tensor("z", new long[] {3}, new byte[] {0, -3, 5}), 2);
        check(Tensors.int8Tensor("q", dims, b), Tensors.floatTensor("s", new long[] {3}, new float[] {0.1f, 0.2f, 0.3f}),
                Tensors.int8Tensor("z", new long[] {3}, new byte[] {0, -3, 5}), -1);
        check(Tensors.uint8Tensor("q", dims, b), Tensors.floatScalar("s", 0.03f),
                Tensors.uint8Tensor("z", new long[] {}, new byte[] {(byte) 7}), 1);
    }
}
