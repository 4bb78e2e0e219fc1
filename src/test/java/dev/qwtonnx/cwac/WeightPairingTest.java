package dev.qwtonnx.cwac;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Pairing by weights: per-channel positive factors pair, other weights, negations and sign flips do not. */
class WeightPairingTest {
    private static final long[] DIMS = {8, 6};

    private static float[] random(long seed) {
        Random r = new Random(seed);
        float[] w = new float[48];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        return w;
    }

    /** Three MatMuls: weights a, b, and a again (a repeated block). */
    private static GraphEditor floatGraph() {
        return new GraphEditor(new ModelBuilder(13).input(tensor("x", FLOAT, 2, 8)).outputs("y")
                .init(Tensors.floatTensor("a", DIMS, random(1))).init(Tensors.floatTensor("b", DIMS, random(2)))
                .init(Tensors.floatTensor("a2", DIMS, random(1)))
                .node("MatMul", "m0", List.of("x", "a"), List.of("y0"))
                .node("MatMul", "m1", List.of("x", "b"), List.of("y1"))
                .node("MatMul", "m2", List.of("x", "a2"), List.of("y")).build().graph());
    }

    /** a with output channel c (axis 1) scaled by 1 + c/10, plus noise of relative size {@code noise}. */
    private static float[] scaledA(double noise) {
        float[] a = random(1);
        Random r = new Random(9);
        float[] q = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            q[i] = (float) (a[i] * (1 + (i % 6) / 10.0) + noise * r.nextGaussian());
        }
        return q;
    }

    @Test
    void aWeightScaledPerChannelPairsAndNearTiesGoByUseAndPosition() {
        WeightPairing p = new WeightPairing(floatGraph());
        float[] q = scaledA(0.01);
        WeightPairing.Pick first = p.closest(LayerKind.MATMUL, DIMS, 1, i -> q[i], 0, Set.of(), c -> true);
        assertEquals("m0", first.candidate().node().getName());
        assertTrue(first.error() < 1e-3, "error " + first.error());
        // The same weights at the third position, the first float layer already paired: the repeated block's.
        NodeProto m0 = first.candidate().node();
        assertEquals("m2", p.closest(LayerKind.MATMUL, DIMS, 1, i -> q[i], 2, Set.of(m0), c -> true).candidate()
                .node().getName());
        // Without a float layer of that kind, or of that shape: none.
        assertNull(p.closest(LayerKind.GEMM, DIMS, 1, i -> q[i], 0, Set.of(), c -> true));
        assertNull(p.closest(LayerKind.MATMUL, new long[] {6, 8}, 1, i -> q[i], 0, Set.of(), c -> true));
    }

    @Test
    void otherWeightsNegationsAndNoiseAboveTheBoundDoNotPair() {
        WeightPairing p = new WeightPairing(floatGraph());
        float[] other = random(3);
        assertNull(p.closest(LayerKind.MATMUL, DIMS, 1, i -> other[i], 0, Set.of(), c -> true));
        float[] negated = scaledA(0);
        assertNull(p.closest(LayerKind.MATMUL, DIMS, 1, i -> -negated[i], 0, Set.of(), c -> true));
        // Noise of about a third of the weights' size: the direction is still close (cosine above 0.9), the error is not.
        float[] noisy = scaledA(0.45);
        float[] a = random(1);
        double e = WeightPairing.error(i -> noisy[i], java.nio.FloatBuffer.wrap(a), DIMS, 1);
        assertTrue(e > WeightPairing.MAX_ERROR, "error " + e);
        double qf = 0;
        double qq = 0;
        double ff = 0;
        for (int i = 0; i < a.length; i++) {
            qf += noisy[i] * a[i];
            qq += noisy[i] * noisy[i];
            ff += a[i] * a[i];
        }
        assertTrue(qf / Math.sqrt(qq * ff) > 0.9, "cosine " + qf / Math.sqrt(qq * ff));
        assertNull(p.closest(LayerKind.MATMUL, DIMS, 1, i -> noisy[i], 0, Set.of(), c -> true));
    }

    @Test
    void aFoldedBatchNormsNegativeFactorIsAppliedBeforeComparing() {
        float[] a = random(1);
        float[] rescale = new float[6];
        float[] q = new float[a.length];
        for (int c = 0; c < 6; c++) {
            rescale[c] = c % 2 == 0 ? 0.5f : -2f;
        }
        for (int i = 0; i < a.length; i++) {
            q[i] = a[i] * rescale[i % 6];
        }
        java.nio.FloatBuffer wf = java.nio.FloatBuffer.wrap(a);
        assertTrue(WeightPairing.error(i -> q[i], wf, DIMS, 1) > WeightPairing.MAX_ERROR);
        assertEquals(0, WeightPairing.error(i -> q[i], wf, rescale, DIMS, 1), 1e-9);
    }
}
