package dev.qwtonnx.cwac;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.OrtKernels;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Quantize → compensate on small models with known structure, checked through ORT. */
class CwacPipelineTest {
    record Case(String name, Model model, CalibrationSource calib, int layers) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(new Case("cnn", TestModels.smallCnn(7),
                        TestModels.gaussian("x", 11, 24, new long[] {1, 3, 16, 16}), 4)),
                Arguments.of(new Case("conv-chain", convChain(),
                        TestModels.gaussian("x", 17, 16, new long[] {1, 4, 12, 12}), 3)),
                Arguments.of(new Case("mlp", TestModels.mlp(5),
                        TestModels.gaussian("x", 13, 24, new long[] {1, 9, 32}, new long[] {1, 17, 32}), 3)),
                Arguments.of(new Case("mlp-2d", TestModels.mlp2d(9),
                        TestModels.gaussian("x", 19, 24, new long[] {8, 16}), 2)));
    }

    /** Conv → Conv (no Relu between) → Relu → Conv read by a second Conv: outputs feed quantized layers directly. */
    static Model convChain() {
        ModelBuilder b = new ModelBuilder(3, 13).input("x", 1, 1, 4, 12, 12).output("y", 1, 1, 6, 12, 12);
        String c1 = b.node("Conv", List.of("x", b.randomInit("w1", 0.3, 6, 4, 1, 1)), "c1");
        String c2 = b.node("Conv", List.of(c1, b.randomInit("w2", 0.3, 6, 6, 3, 3), b.randomInit("b2", 0.1, 6)), "c2",
                dev.qwtonnx.model.Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r2 = b.node("Relu", List.of(c2), "r2");
        b.node("Conv", List.of(r2, b.randomInit("w3", 0.3, 6, 6, 1, 1)), "y");
        return b.build();
    }

    /** No tensor is quantized twice: at most one QuantizeLinear reads any tensor. */
    private static void assertSingleQuantizePerTensor(Model m) {
        Map<String, Integer> readers = new java.util.HashMap<>();
        for (NodeProto n : m.graph().getNodeList()) {
            if (n.getOpType().equals("QuantizeLinear")) {
                assertEquals(1, readers.merge(n.getInput(0), 1, Integer::sum), "quantized twice: " + n.getInput(0));
            }
        }
    }

    private static QuantizeRun.Result run(Case c, CwacOptions cwac, int weightBits) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(new QuantOptions(weightBits, false, EnumSet.of(LayerKind.CONV)))
                .withCwac(cwac).withVerifyBetweenPasses(true);
        return QwtOnnx.quantize(c.model(), c.calib(), o, Progress.NONE, null);
    }

    private static List<String> nodeSignature(Model m) {
        List<String> sig = new ArrayList<>();
        for (NodeProto n : m.graph().getNodeList()) {
            sig.add(n.getOpType() + n.getInputList() + "->" + n.getOutputList());
        }
        return sig;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void compensationAddsNoNodeAndKeepsEdges(Case c) {
        QuantizeRun.Result none = run(c, CwacOptions.defaults().withMethod(CwacOptions.Method.NONE), 8);
        for (CwacOptions.Schedule s : CwacOptions.Schedule.values()) {
            for (CwacOptions.Target t : CwacOptions.Target.values()) {
                QuantizeRun.Result cwac = run(c, new CwacOptions(CwacOptions.Method.CWAC, t, s, 0.01, 2.0), 8);
                assertEquals(nodeSignature(none.model()), nodeSignature(cwac.model()), s + "/" + t);
                assertEquals(c.layers(), cwac.compensation().fits().size());
                assertSingleQuantizePerTensor(cwac.model());
                ModelChecker.check(cwac.model());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void ortFusesEveryQuantizedLayer(Case c) {
        QuantizeRun.Result r = run(c, CwacOptions.defaults(), 8);
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        System.out.println(c + " ORT ops: " + ops);
        assertEquals(c.layers(), OrtKernels.count(ops, OrtKernels.INTEGER_OPS), ops.toString());
        assertEquals(0, OrtKernels.count(ops, OrtKernels.FLOAT_LAYER_OPS), ops.toString());
        assertEquals(List.of(), OrtKernels.unfusedLayers(OrtKernels.optimized(r.model())));
    }

    /**
     * Our quantizer records on each layer node the float node it came from, and compensation pairs
     * through that record, not through names: renamed layer nodes get the same fits; without the
     * record, a layer is left alone with the reason.
     */
    @ParameterizedTest
    @MethodSource("cases")
    void layersPairWithTheirFloatNodesThroughProvenanceNotNames(Case c) {
        QuantizeRun.Result none = run(c, CwacOptions.defaults().withMethod(CwacOptions.Method.NONE), 8);
        Model quantized = none.uncompensated();
        Map<String, String> floatOps = new java.util.HashMap<>();
        none.prepared().graph().getNodeList().forEach(n -> floatOps.put(n.getName(), n.getOpType()));
        int recorded = 0;
        for (NodeProto n : quantized.graph().getNodeList()) {
            String from = Nodes.metadata(n, Nodes.FROM);
            if (from != null) {
                assertEquals(n.getOpType(), floatOps.get(from), n.getName() + " from " + from);
                recorded++;
            }
        }
        assertEquals(c.layers(), recorded);

        var renamed = quantized.graph().toBuilder();
        var stripped = quantized.graph().toBuilder();
        for (int i = 0; i < renamed.getNodeCount(); i++) {
            renamed.setNode(i, renamed.getNode(i).toBuilder().setName("n" + i));
            stripped.setNode(i, stripped.getNode(i).toBuilder().clearMetadataProps());
        }
        CwacOptions o = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        Compensator.Result byName = new Compensator(o, 4).compensate(none.prepared(), quantized, c.calib(),
                Progress.NONE);
        Compensator.Result byRecord = new Compensator(o, 4).compensate(none.prepared(),
                quantized.withGraph(renamed.build()), c.calib(), Progress.NONE);
        assertEquals(c.layers(), byRecord.fits().size());
        assertEquals(List.of(), byRecord.skipped());
        List<ChannelFit> expected = new ArrayList<>(byName.fits().values());
        List<ChannelFit> actual = new ArrayList<>(byRecord.fits().values());
        for (int i = 0; i < expected.size(); i++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.get(i).a(), actual.get(i).a());
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.get(i).b(), actual.get(i).b());
        }

        Compensator.Result unrecorded = new Compensator(o, 4).compensate(none.prepared(),
                quantized.withGraph(stripped.build()), c.calib(), Progress.NONE);
        assertEquals(0, unrecorded.fits().size());
        assertEquals(c.layers(), unrecorded.skipped().size());
        unrecorded.skipped().forEach(r -> assertTrue(r.contains("no '" + Nodes.FROM + "' entry"), r));
    }

    /** Folding one layer's fit changes that layer's output from yq to a·yq + b, per channel. */
    @ParameterizedTest
    @MethodSource("cases")
    void foldedLayerComputesTheAffineMap(Case c) {
        QuantizeRun.Result r = run(c, new CwacOptions(CwacOptions.Method.CWAC, CwacOptions.Target.GLOBAL,
                CwacOptions.Schedule.PARALLEL, 0.01, 2.0), 6);
        Model base = r.uncompensated();
        Sample sample = c.calib().iterator().next();
        for (QdqLayer l : r.compensation().layers()) {
            ChannelFit fit = r.compensation().fits().get(l.name());
            assertFalse(fit.isIdentity(), l.name());
            Model one = new CwacFold(List.of(l), Map.of(l.name(), fit)).run(base).model();
            FloatTensor before;
            FloatTensor after;
            try (OrtRunner a = new OrtRunner(base, List.of(l.output())); OrtRunner b = new OrtRunner(one, List.of(l.output()))) {
                before = a.run(sample, List.of(l.output())).get(l.output());
                after = b.run(sample, List.of(l.output())).get(l.output());
            }
            int axis = l.outputChannelAxis(before.shape().length);
            long inner = before.inner(axis);
            float[] wScale = Tensors.floats(new GraphEditor(base.graph()).initializer(l.weightScale()));
            for (int i = 0; i < before.data().length; i++) {
                int ch = (int) ((i / inner) % l.channels());
                double expected = fit.a()[ch] * before.data()[i] + fit.b()[ch];
                // The only difference allowed is the rounding of the refolded int32 bias: half a step
                // of its scale x_scale·w_scale[c]·a[c]. A MatMul's float bias is rounded by ORT itself where
                // its MatMulAddFusion makes a Gemm (at x_scale·w_scale[c], before and after the fold): a step.
                double biasStep = l.inputScale() * wScale[ch] * fit.a()[ch];
                double tolerance = (l.biasQuantized() != null ? 0.5 : 1.0) * biasStep * (1 + 1e-3)
                        + 1e-5 * Math.abs(expected) + 1e-6;
                assertTrue(Math.abs(expected - after.data()[i]) <= tolerance, l.name() + " channel " + ch
                        + ": " + after.data()[i] + " where a·yq + b = " + expected);
            }
        }
    }

    /** With a sample cap, the fits are those measured on the first samples alone. */
    @org.junit.jupiter.api.Test
    void cappedFitsAreTheFitsOfTheFirstSamples() {
        Case c = (Case) cases().toList().get(2).get()[0];
        QuantizeRun.Result none = run(c, CwacOptions.defaults().withMethod(CwacOptions.Method.NONE), 6);
        CwacOptions o = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        Map<String, ChannelFit> capped = new Compensator(o.withSamples(8), 4).compensate(none.prepared(),
                none.uncompensated(), c.calib(), Progress.NONE).fits();
        Map<String, ChannelFit> first = new Compensator(o.withSamples(0), 4).compensate(none.prepared(),
                none.uncompensated(), dev.qwtonnx.calib.data.CalibrationSources.limit(c.calib(), 8, null),
                Progress.NONE).fits();
        Map<String, ChannelFit> all = new Compensator(o.withSamples(0), 4).compensate(none.prepared(),
                none.uncompensated(), c.calib(), Progress.NONE).fits();
        assertEquals(first.keySet(), capped.keySet());
        boolean differsFromAll = false;
        for (String l : first.keySet()) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(first.get(l).a(), capped.get(l).a(), 1e-9, l);
            org.junit.jupiter.api.Assertions.assertArrayEquals(first.get(l).b(), capped.get(l).b(), 1e-9, l);
            differsFromAll |= !java.util.Arrays.equals(all.get(l).a(), capped.get(l).a());
        }
        assertTrue(differsFromAll, "the cap changed nothing: were all samples measured?");
    }

    @org.junit.jupiter.api.Test
    void aNegativeSampleCapIsRefused() {
        dev.qwtonnx.QwtException e = org.junit.jupiter.api.Assertions.assertThrows(dev.qwtonnx.QwtException.class,
                () -> CwacOptions.defaults().withSamples(-1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }

    /** Two MatMuls share one weight and one bias constant: each gets its own compensated copy. */
    @org.junit.jupiter.api.Test
    void sharedWeightAndBiasAreCopiedNotChangedForBoth() {
        ModelBuilder b = new ModelBuilder(8, 13).input("x", 1, 1, 5, 16).output("y1", 1, 1, 5, 16)
                .output("y2", 1, 1, 5, 16);
        String w = b.randomInit("w", 0.3, 16, 16);
        String bias = b.randomInit("bias", 0.2, 16);
        b.node("Add", List.of(b.node("MatMul", List.of("x", w), "m1"), bias), "y1");
        String r = b.node("Relu", List.of("x"), "r");
        b.node("Add", List.of(b.node("MatMul", List.of(r, w), "m2"), bias), "y2");
        Case c = new Case("shared", b.build(), TestModels.gaussian("x", 3, 12, new long[] {1, 5, 16}), 2);
        QuantizeRun.Result cwac = run(c, CwacOptions.defaults(), 4);
        QuantizeRun.Result none = run(c, CwacOptions.defaults().withMethod(CwacOptions.Method.NONE), 4);
        List<NodeProto> adds = cwac.model().graph().getNodeList().stream().filter(n -> n.getOpType().equals("Add")).toList();
        java.util.Set<String> consts = new java.util.HashSet<>();
        for (NodeProto a : adds) {
            consts.add(a.getInput(1));
        }
        assertEquals(2, consts.size(), "each layer folds into its own bias constant");
        assertEquals(none.model().graph().getNodeCount(), cwac.model().graph().getNodeCount());
        // The float model's outputs are approached by both layers, not one at the other's expense.
        QdqLayer first = cwac.compensation().layers().get(0);
        QdqLayer second = cwac.compensation().layers().get(1);
        assertTrue(layerMse(cwac.prepared(), cwac.model(), first, c.calib()) < layerMse(none.prepared(), none.model(), first, c.calib()));
        assertTrue(layerMse(cwac.prepared(), cwac.model(), second, c.calib()) < layerMse(none.prepared(), none.model(), second, c.calib()));
    }

    /** Measured through ORT: each compensated layer's output is closer to the float model's. */
    @ParameterizedTest
    @MethodSource("cases")
    void compensationLowersEachLayersCalibrationError(Case c) {
        QuantizeRun.Result none = run(c, CwacOptions.defaults().withMethod(CwacOptions.Method.NONE), 4);
        // Fitted on all the samples the error is measured on (the default cap would fit on a part of them).
        QuantizeRun.Result cwac = run(c, CwacOptions.defaults().withSamples(0), 4);
        double totalNone = 0;
        double totalCwac = 0;
        for (QdqLayer l : cwac.compensation().layers()) {
            double eNone = layerMse(none.prepared(), none.model(), l, c.calib());
            double eCwac = layerMse(cwac.prepared(), cwac.model(), l, c.calib());
            assertTrue(eCwac <= eNone * 1.001 + 1e-9, l.name() + ": " + eCwac + " > " + eNone);
            totalNone += eNone;
            totalCwac += eCwac;
        }
        assertTrue(totalCwac < 0.9 * totalNone, "cwac " + totalCwac + " vs none " + totalNone);
    }

    private static double layerMse(Model floatModel, Model quant, QdqLayer l, CalibrationSource data) {
        String floatOut = l.biasAdd() == null ? floatNodeOutput(floatModel, l.name()) : l.output();
        double sum = 0;
        long n = 0;
        try (OrtRunner f = new OrtRunner(floatModel, List.of(floatOut)); OrtRunner q = new OrtRunner(quant, List.of(l.output()))) {
            for (Sample s : data) {
                float[] a = f.run(s, List.of(floatOut)).get(floatOut).data();
                float[] b = q.run(s, List.of(l.output())).get(l.output()).data();
                for (int i = 0; i < a.length; i++) {
                    double d = a[i] - b[i];
                    sum += d * d;
                }
                n += a.length;
            }
        }
        return sum / n;
    }

    private static String floatNodeOutput(Model m, String name) {
        return m.graph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElseThrow()
                .getOutput(0);
    }
}
