package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;
import java.util.HashMap;
import org.junit.jupiter.api.Test;

class GridTest {
    /** {@code m} with every int8 weight (more than one element) clamped to ±{@code limit}. */
    private static Model clamped(Model m, int limit) {
        GraphEditor g = new GraphEditor(m.graph());
        for (TensorProto t : m.graph().getInitializerList()) {
            if (t.getDataType() != TensorProto.DataType.INT8_VALUE || Tensors.dims(t).length == 0) {
                continue;
            }
            ByteBuffer b = Tensors.toHost(t).bytes();
            byte[] v = new byte[b.remaining()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (byte) Math.max(-limit, Math.min(limit, b.get(b.position() + i)));
            }
            g.putInitializer(Tensors.int8Tensor(t.getName(), Tensors.dims(t), v));
        }
        return m.withGraph(g.build());
    }

    @Test
    void fullRangeWeightsAreThoseWhosePairsCanSaturateASixteenBitSum() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>()); // ORT's form: s8 weights over [-127, 127]
        assertTrue(Grid.fullRange(theirs));
        // 255 * (64 + 64) fits in 16 bits, 255 * (65 + 64) does not.
        assertFalse(Grid.fullRange(clamped(theirs, Grid.SAFE_MAGNITUDE)));
        assertTrue(Grid.fullRange(clamped(theirs, Grid.SAFE_MAGNITUDE + 1)));
    }
}
