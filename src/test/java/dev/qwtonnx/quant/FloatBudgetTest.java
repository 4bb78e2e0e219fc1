package dev.qwtonnx.quant;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Keeping layers in float: by name, and by measured sensitivity within a budget. */
class FloatBudgetTest {
    /**
     * x[1,S,32] → MatMul m1 → Relu → MatMul m2 → MatMul m3 → y. m2's weight has one input row of
     * outliers, so on a 4-bit grid every other weight of it rounds to zero: by far the most
     * sensitive layer.
     */
    static Model fragileMlp() {
        ModelBuilder b = new ModelBuilder(4, 13).input("x", 1, 1, -1, 32).output("y", 1, 1, -1, 16);
        String m1 = b.node("MatMul", List.of("x", b.randomInit("w1", 0.2, 32, 64)), "m1");
        String r1 = b.node("Relu", List.of(m1), "r1");
        Random r = new Random(3);
        float[] w2 = new float[64 * 32];
        for (int i = 0; i < w2.length; i++) {
            w2[i] = i < 32 ? 5f : (float) (0.2 * r.nextGaussian());
        }
        String m2 = b.node("MatMul", List.of(r1, b.init("w2", new long[] {64, 32}, w2)), "m2");
        b.node("MatMul", List.of(m2, b.randomInit("w3", 0.2, 32, 16)), "y");
        return b.build();
    }

    static CalibrationSource data() {
        return TestModels.gaussian("x", 8, 16, new long[] {1, 7, 32});
    }

    static QuantizeRun.Result run(Set<String> keep, int budget) {
        QuantOptions q = new QuantOptions(4, false, EnumSet.of(LayerKind.CONV), WeightRounding.NEAREST, keep, budget);
        return QwtOnnx.quantize(fragileMlp(), data(), QuantizeRun.Options.defaults().withQuant(q)
                .withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE)).withVerifyBetweenPasses(true), Progress.NONE, null);
    }

    static String weightInput(Model m, String node) {
        GraphEditor g = new GraphEditor(m.graph());
        for (NodeProto n : g.nodes()) {
            if (n.getName().equals(node)) {
                return n.getInput(1);
            }
        }
        throw new AssertionError("no node " + node);
    }

    static double sqnr(QuantizeRun.Result r) {
        return Fidelity.measure(r.prepared(), r.model(), data(), Progress.NONE).get(0).meanSqnrDb();
    }

    @Test
    void theBudgetKeepsTheMostSensitiveLayerInFloat() {
        QuantizeRun.Result all = run(Set.of(), 0);
        QuantizeRun.Result one = run(Set.of(), 1);
        assertEquals(List.of(), all.keptFloat());
        assertEquals(1, one.keptFloat().size());
        String kept = one.keptFloat().get(0).layer();
        assertEquals("w2", weightInput(one.prepared(), kept), "kept " + kept);
        // The kept layer reads its float weight; the others read dequantized int8.
        assertEquals("w2", weightInput(one.model(), kept));
        assertEquals(2, one.plan().layers().size());
        // The plan says why: the budget's choice, with the error that made it.
        assertTrue(one.plan().rejected().stream().anyMatch(s -> s.contains("'" + kept + "': kept in float by "
                + "--float-budget (relative output error")), one.plan().rejected().toString());
        assertTrue(sqnr(one) > sqnr(all) + 6, "SQNR with m2 in float " + sqnr(one) + " vs all quantized " + sqnr(all));
    }

    @Test
    void layersKeptByNameAreLeftAlone() {
        QuantizeRun.Result all = run(Set.of(), 0);
        String m1 = all.plan().layers().get(0).name();
        QuantizeRun.Result r = run(Set.of(m1), 0);
        assertEquals(2, r.plan().layers().size());
        assertFalse(r.plan().layers().stream().anyMatch(l -> l.name().equals(m1)));
        assertTrue(r.plan().rejected().stream().anyMatch(s -> s.contains("kept in float")), r.plan().rejected().toString());
        assertEquals("w1", weightInput(r.model(), m1));
    }

    @Test
    void aBudgetThatLeavesNothingIsAUserError() {
        assertThrows(QwtException.class, () -> run(Set.of(), 3));
        assertThrows(QwtException.class, () -> new QuantOptions(8, false, EnumSet.of(LayerKind.CONV),
                WeightRounding.NEAREST, Set.of(), -1));
    }
}
