package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The bias-form passes on one quantized MatMul + bias Add: the form each writes where ORT would
 * otherwise run the layer in float, and the reason each gives for a MatMul it leaves.
 */
class BiasPassRejectionsTest {
    private static final String MM = "MatMul node 'mm'";

    private static Rejection int32(String reason) {
        return new Rejection(Int32MatMulBias.NAME, MM, reason);
    }

    private static Rejection fullRank(String reason) {
        return new Rejection(FullRankMatMulBias.NAME, MM, reason);
    }

    @Test
    void int32BiasOnA2dInputLeavesNothing() {
        PassResult r = new Int32MatMulBias().run(QdqMatMul.of(8, QdqMatMul.K));
        assertTrue(r.changed());
        assertEquals(List.of(), r.rejections());
        GraphEditor g = new GraphEditor(r.model().graph());
        assertEquals("DequantizeLinear", g.producer(g.producer("y").getInput(1)).getOpType());
    }

    @Test
    void int32BiasLeavesAMatMulOfRank3Input() {
        Model in = QdqMatMul.of(2, 8, QdqMatMul.K);
        PassResult r = new Int32MatMulBias().run(in);
        assertSame(in, r.model());
        assertEquals(List.of(int32("its input has rank 3, and ORT makes a Gemm only of a MatMul with a 2-D input")),
                r.rejections());
    }

    @Test
    void int32BiasLeavesAMatMulWhoseOutputIsAGraphOutput() {
        Model in = QdqMatMul.builder(8, QdqMatMul.K).outputs("m").build();
        PassResult r = new Int32MatMulBias().run(in);
        assertFalse(r.changed());
        assertEquals(List.of(int32("its output is a graph output (no bias Add)")), r.rejections());
    }

    @Test
    void int32BiasLeavesABiasAnotherNodeReads() {
        Model in = QdqMatMul.builder(8, QdqMatMul.K).outputs("b2").node("Relu", "other", List.of("b"), List.of("b2"))
                .build();
        PassResult r = new Int32MatMulBias().run(in);
        assertFalse(r.changed());
        assertEquals(List.of(int32("its bias 'b' is also read by another node")), r.rejections());
    }

    @Test
    void fullRankBiasOnAStaticRank3InputLeavesNothing() {
        PassResult r = new FullRankMatMulBias().run(QdqMatMul.of(2, 8, QdqMatMul.K));
        assertTrue(r.changed());
        assertEquals(List.of(), r.rejections());
        long[] dims = Tensors.dims(new GraphEditor(r.model().graph()).initializer("b"));
        assertArrayEquals(new long[] {1, 1, QdqMatMul.N}, dims);
    }

    @Test
    void fullRankBiasLeavesAMatMulWithoutAStaticInputShape() {
        Model in = QdqMatMul.of(-1, 8, QdqMatMul.K);
        PassResult r = new FullRankMatMulBias().run(in);
        assertSame(in, r.model());
        assertEquals(List.of(fullRank("no graph input has a fully static shape, which ORT's MatMulAddFusion needs"
                + " to reshape a MatMul's input around a Gemm")), r.rejections());
    }

    @Test
    void fullRankBiasLeavesAMatMulOnA2dInputToTheInt32Form() {
        Model in = QdqMatMul.of(8, QdqMatMul.K);
        PassResult r = new FullRankMatMulBias().run(in);
        assertSame(in, r.model());
        assertEquals(List.of(fullRank("ORT makes a Gemm of it on its input as it is, not reshaped ("
                + Int32MatMulBias.NAME + "'s case)")), r.rejections());
    }
}
