package dev.qwtonnx.verify;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class VerifierTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;
    private static final long[] SHAPE = {1, 3, 16, 16};

    private static Model floatModel;
    private static QuantizeRun.Result quantized;
    private static CalibrationSource samples;

    /**
     * Three Convs and a Gemm; the first Conv ("conv_big_bias") has a large bias, so that a 2 % error
     * in its bias scale is well above its quantization noise. (It reads the graph input, whose scale
     * makes input scale × weight scale large enough for ORT's bias-scale check to see 2 %: ORT 1.29
     * tolerates about 1 % plus a small absolute slack.)
     */
    static Model cnnWithLargeBias() {
        ModelBuilder b = new ModelBuilder(7, 13).input("x", F, SHAPE).output("logits", F, 1, 10);
        String c1 = b.node("Conv", List.of("x", b.randomInit("w1", 0.3, 8, 3, 3, 3), b.randomInit("b1", 10, 8)), "c1",
                Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r1 = b.node("Relu", List.of(c1), "r1");
        String c2 = b.node("Conv", List.of(r1, b.randomInit("w2", 0.1, 8, 8, 3, 3), b.randomInit("b2", 0.1, 8)), "c2",
                Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String c3 = b.node("Conv", List.of(c2, b.randomInit("w3", 0.3, 16, 8, 1, 1), b.randomInit("b3", 0.1, 16)), "c3");
        String p = b.node("GlobalAveragePool", List.of(c3), "pool");
        String f = b.node("Flatten", List.of(p), "flat");
        b.node("Gemm", List.of(f, b.randomInit("wg", 0.3, 10, 16), b.randomInit("bg", 0.1, 10)), "logits",
                Nodes.intAttribute("transB", 1));
        Model m = b.build();
        // Give the first Conv a name a person would look for.
        var g = m.graph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getOutput(0).equals("c1")) {
                g.setNode(i, g.getNode(i).toBuilder().setName("conv_big_bias"));
            }
        }
        return m.withGraph(g.build());
    }

    @BeforeAll
    static void quantize() {
        floatModel = cnnWithLargeBias();
        samples = TestModels.gaussian("x", 3, 6, SHAPE);
        quantized = QwtOnnx.quantize(floatModel, samples, Int8Anyway.options(), Progress.NONE, null);
    }

    /** The model with the bias scale of the named Conv multiplied by {@code factor}. */
    static Model withBiasScale(Model q, String conv, float factor) {
        GraphEditor g = new GraphEditor(q.graph());
        NodeProto n = g.nodes().stream().filter(x -> x.getName().equals(conv)).findFirst().orElseThrow();
        TensorProto s = g.initializer(g.producer(n.getInput(2)).getInput(1));
        float[] v = Tensors.floats(s);
        for (int i = 0; i < v.length; i++) {
            v[i] *= factor;
        }
        g.putInitializer(Tensors.floatTensor(s.getName(), Tensors.dims(s), v));
        return q.withGraph(g.build());
    }

    static Report verify(Model f, Model q, Verifier.QuantizeRun run) {
        return Verifier.verify(new Verifier.Subject(f, null), new Verifier.Subject(q, null), samples, "gaussian",
                new Verifier.Options(3), run, Progress.NONE);
    }

    @Test
    void aBiasScaleOffByTwoPercentIsNamedUnfusedAndWorst() {
        Model broken = withBiasScale(quantized.model(), "conv_big_bias", 1.02f);
        Report r = verify(quantized.prepared(), broken, null);

        assertEquals(1, r.runtime().unfused().size(), r.runtime().unfused().toString());
        Report.Unfused u = r.runtime().unfused().get(0);
        assertEquals("conv_big_bias", u.node());
        assertEquals("Conv", u.opType());
        assertTrue(u.reason().startsWith("bias scale mismatch"), u.reason());
        assertTrue(u.reason().contains("2.00%"), u.reason());

        Report.LayerFidelity worst = r.layers().layers().get(0);
        assertEquals("conv_big_bias", worst.node(), r.layers().layers().toString());
        assertFalse(worst.fused());
        assertEquals(u.reason(), worst.unfusedReason());
        assertEquals(3, r.runtime().quantizedModel().integerKernels());
        assertEquals(1, r.runtime().quantizedModel().opCounts().stream().filter(c -> c.op().equals("Conv"))
                .mapToInt(Report.OpCount::count).sum());

        // The same layer, unbroken, is measurably better: the bias error is what makes it the worst.
        Report good = verify(quantized.prepared(), quantized.model(), null);
        Report.LayerFidelity sameLayer = good.layers().layers().stream().filter(l -> l.node().equals("conv_big_bias"))
                .findFirst().orElseThrow();
        assertTrue(sameLayer.localSqnrDb() > worst.localSqnrDb() + 3, sameLayer + " vs " + worst);
    }

    @Test
    void aCorrectModelHasNoUnfusedLayerAndEveryLayerMatched() {
        Report r = verify(quantized.prepared(), quantized.model(), new Verifier.QuantizeRun(quantized.uncompensated(),
                quantized.compensation(), "cwac", "gaussian", samples.size(), null, null, null));
        assertEquals(List.of(), r.runtime().unfused());
        assertEquals(4, r.layers().found());
        assertEquals(4, r.layers().matched());
        assertEquals(List.of(), r.layers().unmatched());
        for (Report.LayerFidelity l : r.layers().layers()) {
            assertTrue(l.fused(), l.toString());
            assertNull(l.unfusedReason());
            assertEquals("provenance+weight", l.matchedBy());
            assertTrue(l.sqnrDb() > 15 && l.sqnrDb() < 200, l.toString());
            assertNotNull(l.localSqnrDb());
            assertNotNull(l.sqnrBeforeDb());
            assertNotNull(l.gain());
            assertTrue(l.fitErrorAfter() <= l.fitErrorBefore(), l.toString());
        }
        for (int i = 1; i < r.layers().layers().size(); i++) {
            assertTrue(r.layers().layers().get(i - 1).localSqnrDb() <= r.layers().layers().get(i).localSqnrDb());
        }
        assertEquals(4, r.runtime().quantizedModel().integerKernels());
        assertEquals(0, r.cost().nodesAddedByCompensation());
        assertEquals(0, r.compensation().nodesAdded());
        int binned = r.compensation().gainHistogram().bins().stream().mapToInt(Report.Bin::count).sum();
        assertEquals(r.compensation().channels(), binned);
        assertEquals(8 + 8 + 16 + 10, r.compensation().channels());
        assertEquals("qwt-onnx", r.provenance().tool());
        assertEquals(6, r.provenance().calibrationSamples());
        assertEquals((double) r.cost().quantizedBytes() / r.cost().floatBytes(), r.cost().sizeRatio(), 1e-12);
        assertEquals(3, r.cost().runs());
        // verify's --runs repeat the first sample in the sessions that measured the output fidelity.
        assertEquals(1, r.cost().latencySamples());
        assertEquals("gaussian-0", r.cost().latencySample());
        assertEquals(r.cost().floatLatency().medianMs() / r.cost().quantizedLatency().medianMs(), r.cost().speedup(), 1e-9);
        assertTrue(r.cost().floatLatency().minMs() <= r.cost().floatLatency().medianMs());
        assertTrue(r.cost().floatLatency().medianMs() <= r.cost().floatLatency().maxMs());
        Fidelity.OutputFidelity o = r.outputs().get(0);
        assertEquals("logits", o.output());
        assertNotNull(o.top1Agreement());
        assertNotNull(o.top5Agreement());
        assertTrue(o.meanAbsError() <= o.maxAbsError());
        assertTrue(o.worstSample().startsWith("gaussian-"));
    }

    @Test
    void layersAreMatchedByWeightWhenTheOtherToolRenamedThem() {
        var g = quantized.model().graph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            // Another tool's model: other names, and none of our provenance entries.
            g.setNode(i, g.getNode(i).toBuilder().setName("other_tool_" + i).clearMetadataProps());
        }
        Report r = verify(quantized.prepared(), quantized.model().withGraph(g.build()), null);
        assertEquals(4, r.layers().matched());
        for (Report.LayerFidelity l : r.layers().layers()) {
            assertEquals("weight", l.matchedBy());
            assertTrue(l.weightCosine() > 0.95, l.toString());
        }
        // Each renamed layer found its own float node, not a look-alike of the same shape.
        assertEquals(4, r.layers().layers().stream().map(Report.LayerFidelity::floatNode).distinct().count());
        Report.LayerFidelity big = r.layers().layers().stream().filter(l -> l.floatNode().equals("conv_big_bias"))
                .findFirst().orElseThrow();
        assertTrue(big.node().startsWith("other_tool_"));
    }

    @Test
    void qoperatorLayersAreFoundMeasuredAndMatched() {
        // ORT's own optimized graph of our model is a QOperator model: QLinearConv (and QGemm).
        Model qop = OrtKernels.optimized(quantized.model());
        Report r = verify(quantized.prepared(), qop, null);
        List<Report.LayerFidelity> layers = r.layers().layers().stream().filter(l -> l.style().equals("qoperator")).toList();
        assertEquals(4, layers.size(), r.layers().toString());
        assertEquals(r.layers().found(), r.layers().matched());
        assertEquals(4, layers.stream().map(Report.LayerFidelity::floatNode).distinct().count());
        assertEquals(List.of("Conv", "Conv", "Conv", "Gemm"), layers.stream().map(Report.LayerFidelity::opType).sorted().toList());
        for (Report.LayerFidelity l : layers) {
            assertTrue(l.sqnrDb() > 15 && l.sqnrDb() < 200, l.toString());
            assertNotNull(l.localSqnrDb(), l.toString());
        }
        assertEquals(List.of(), r.runtime().unfused());
    }

    @Test
    void matMulIntegerToFloatLayersMeasureAsTheirQdqFormDoes() {
        // MatMul → bias Add in QDQ form against the same layers as com.microsoft MatMulIntegerToFloat taking
        // the bias: the same arithmetic in ORT, so the per-layer figures agree; the lowered layer's bias is
        // taken off before it is compared with the float MatMul, or its SQNR would be the bias's.
        Model mlp = TestModels.mlp(3, 6);
        CalibrationSource xs = TestModels.gaussian("x", 4, 6, new long[] {1, 6, 32});
        QuantizeRun.Result q = QwtOnnx.quantize(mlp, xs, Int8Anyway.options(), Progress.NONE, null);
        Model lowered = QwtOnnx.toQOperator(q.model(), true, null);
        assertEquals(3, lowered.graph().getNodeList().stream().filter(n -> n.getOpType().equals("MatMulIntegerToFloat"))
                .count());
        java.util.function.Function<Model, Map<String, Report.LayerFidelity>> byFloatNode = m -> {
            Report r = Verifier.verify(new Verifier.Subject(q.prepared(), null), new Verifier.Subject(m, null), xs,
                    "gaussian", new Verifier.Options(3), null, Progress.NONE);
            assertEquals(3, r.layers().found(), r.layers().toString());
            assertEquals(3, r.layers().matched());
            Map<String, Report.LayerFidelity> out = new java.util.TreeMap<>();
            r.layers().layers().forEach(l -> out.put(l.floatNode(), l));
            return out;
        };
        Map<String, Report.LayerFidelity> qdq = byFloatNode.apply(q.model());
        Map<String, Report.LayerFidelity> qop = byFloatNode.apply(lowered);
        assertEquals(qdq.keySet(), qop.keySet());
        for (String node : qdq.keySet()) {
            assertEquals("qoperator", qop.get(node).style());
            assertEquals(qdq.get(node).sqnrDb(), qop.get(node).sqnrDb(), 0.01, node);
            assertEquals(qdq.get(node).localSqnrDb(), qop.get(node).localSqnrDb(), 0.01, node);
            assertTrue(qop.get(node).sqnrDb() > 20 && qop.get(node).sqnrDb() < 200, qop.get(node).toString());
        }
    }

    @Test
    void modelsWithDifferentOutputsAreAUserError() {
        Model other = TestModels.smallCnn(1);
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.qwtonnx.QwtException.class,
                () -> verify(other.withGraph(other.graph().toBuilder().setOutput(0,
                        other.graph().getOutput(0).toBuilder().setName("scores")).build()), quantized.model(), null));
        assertTrue(e.getMessage().contains("different outputs"), e.getMessage());
    }
}
