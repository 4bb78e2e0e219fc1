package dev.qwtonnx.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.e2e.SubgraphCoverageTest;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The per-layer figures measured in one session over one graph (the float model and every subject,
 * names prefixed apart, SQNR summed inside) are the figures a session per model gives.
 */
class LayerFidelityMeterTest {
    /** Same layers; every figure within 0.01 dB (ORT's float sums against Java's double ones). */
    /** A session per model. */
    private static final LayerFidelityMeter.Pass APART = new LayerFidelityMeter.Pass(false, false);

    private static void assertSameFigures(List<Map<String, LayerFidelityMeter.Figures>> a,
            List<Map<String, LayerFidelityMeter.Figures>> b) {
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).keySet(), b.get(i).keySet());
            for (String node : a.get(i).keySet()) {
                LayerFidelityMeter.Figures x = a.get(i).get(node);
                LayerFidelityMeter.Figures y = b.get(i).get(node);
                String what = node + ": " + x + " vs " + y;
                assertEquals(x.meanDb(), y.meanDb(), 0.01, what);
                assertEquals(x.minDb(), y.minDb(), 0.01, what);
                assertEquals(x.localMeanDb() == null, y.localMeanDb() == null, what);
                if (x.localMeanDb() != null) {
                    assertEquals(x.localMeanDb(), y.localMeanDb(), 0.01, what);
                }
                assertEquals(x.ownMeanDb() == null, y.ownMeanDb() == null, what);
                if (x.ownMeanDb() != null) {
                    assertEquals(x.ownMeanDb(), y.ownMeanDb(), 0.01, what);
                }
            }
        }
    }

    private static List<LayerFidelityMeter.Subject> subjects(QuantizeRun.Result r) {
        LayerCounterparts.Result matched = LayerCounterparts.match(r.prepared(), QuantizedLayers.find(r.model()));
        assertFalse(matched.matched().isEmpty());
        return List.of(new LayerFidelityMeter.Subject(r.model(), matched.matched()),
                new LayerFidelityMeter.Subject(r.uncompensated(), Verifier.beforeMatches(r.uncompensated(),
                        matched.matched())));
    }

    private static CalibrationSource cnnSamples() {
        return TestModels.gaussian("x", 3, 6, new long[] {1, 3, 16, 16});
    }

    /** The CNN with a large bias, quantized on {@code samples}. */
    private static QuantizeRun.Result cnn(CalibrationSource samples) {
        return QwtOnnx.quantize(VerifierTest.cnnWithLargeBias(), samples, Int8Anyway.options(), Progress.NONE, null);
    }

    @Test
    void aModelAndItsUncompensatedSelfMeasuredTogetherAsApart() {
        CalibrationSource samples = cnnSamples();
        QuantizeRun.Result r = cnn(samples);
        List<LayerFidelityMeter.Subject> subjects = subjects(r);
        assertNotNull(MeasuringGraph.prefixes(r.prepared(), List.of(r.model(), r.uncompensated())));
        List<Map<String, LayerFidelityMeter.Figures>> together = LayerFidelityMeter.measure(r.prepared(), subjects,
                true, samples, Progress.NONE, "test", LayerFidelityMeter.Pass.DEFAULT);
        List<Map<String, LayerFidelityMeter.Figures>> apart = LayerFidelityMeter.measure(r.prepared(), subjects, true,
                samples, Progress.NONE, "test", APART);
        assertSameFigures(together, apart);
        // Compensation shows in the figures (they are not the same model measured twice).
        assertTrue(together.get(0).values().stream().anyMatch(f -> f.ownMeanDb() != null));
        assertFalse(together.get(0).equals(together.get(1)));
    }

    /**
     * One run at a time (large samples) adds the same sums in the same order as runs in flight: the same figures,
     * bit for bit.
     */
    @Test
    void oneRunAtATimeGivesTheFiguresOfRunsInFlight() {
        CalibrationSource samples = cnnSamples();
        QuantizeRun.Result r = cnn(samples);
        List<LayerFidelityMeter.Subject> subjects = subjects(r);
        List<Map<String, LayerFidelityMeter.Figures>> inFlight = LayerFidelityMeter.measure(r.prepared(), subjects,
                true, samples, Progress.NONE, "test", LayerFidelityMeter.Pass.DEFAULT);
        List<Map<String, LayerFidelityMeter.Figures>> alone = LayerFidelityMeter.measure(r.prepared(), subjects, true,
                samples, Progress.NONE, "test", new LayerFidelityMeter.Pass(true, true));
        assertFalse(inFlight.get(0).isEmpty());
        assertEquals(inFlight, alone);
    }

    /**
     * A layer's SQNR over samples is that of their energies summed, as the output fidelity's: computed here from the
     * layer's tensors copied out of two sessions, it matches the figure summed inside the measuring graph.
     */
    @Test
    void aLayersSqnrIsThatOfTheSamplesEnergiesSummed() {
        CalibrationSource samples = cnnSamples();
        QuantizeRun.Result r = cnn(samples);
        List<LayerFidelityMeter.Subject> subjects = subjects(r);
        // Measured on samples of different scales: the quiet ones' rounding error weighs more in their own dB.
        List<dev.qwtonnx.calib.data.Sample> scaled = new java.util.ArrayList<>();
        float[] scales = {0.02f, 0.1f, 1, 1, 0.3f, 1};
        int i = 0;
        for (dev.qwtonnx.calib.data.Sample x : samples) {
            dev.qwtonnx.model.HostTensor t = x.inputs().get("x");
            float[] v = t.toFloats();
            for (int k = 0; k < v.length; k++) {
                v[k] *= scales[i];
            }
            scaled.add(new dev.qwtonnx.calib.data.Sample(x.id(), Map.of("x",
                    dev.qwtonnx.model.HostTensor.ofFloats(new long[] {1, 3, 16, 16}, v))));
            i++;
        }
        samples = dev.qwtonnx.calib.data.CalibrationSources.ofList(scaled);
        Map<String, LayerFidelityMeter.Figures> figures = LayerFidelityMeter.measure(r.prepared(), subjects, false,
                samples, Progress.NONE, "test", LayerFidelityMeter.Pass.DEFAULT).get(0);
        int checked = 0;
        double apart = 0;
        for (LayerCounterparts.Match m : subjects.get(0).matches()) {
            if (m.layer().outputScale() != null || m.layer().outputBias() != null) {
                continue; // measured on a tensor the measuring graph adds
            }
            Fidelity.Energies e = new Fidelity.Energies();
            double meanOfDb = 0;
            try (dev.qwtonnx.calib.OrtRunner f = new dev.qwtonnx.calib.OrtRunner(r.prepared(), List.of(m.floatOutput()));
                    dev.qwtonnx.calib.OrtRunner q = new dev.qwtonnx.calib.OrtRunner(r.model(), List.of(m.layer().output()))) {
                for (dev.qwtonnx.calib.data.Sample x : samples) {
                    meanOfDb += e.add(f.run(x, List.of(m.floatOutput())).get(m.floatOutput()).data(),
                            q.run(x, List.of(m.layer().output())).get(m.layer().output()).data()) / samples.size();
                }
            }
            LayerFidelityMeter.Figures fig = figures.get(m.layer().node());
            assertEquals(e.sqnrDb(), fig.meanDb(), 0.01, m.layer().node());
            apart = Math.max(apart, Math.abs(meanOfDb - e.sqnrDb()));
            checked++;
        }
        assertTrue(checked > 0);
        assertTrue(apart > 0.1, "the mean of the samples' dB reads otherwise on some layer: " + apart);
    }

    /** An If whose branches read the outer graph's tensors: its names are prefixed inside the branches too. */
    @Test
    void aModelWithSubgraphsReadingOuterNamesMeasuredTogetherAsApart() {
        CalibrationSource samples = TestModels.gaussian("x", 3, 8, new long[] {1, 4, 8, 8});
        QuantizeRun.Result r = QwtOnnx.quantize(SubgraphCoverageTest.ifModel(0.2f), samples, Int8Anyway.options(),
                Progress.NONE, null);
        List<LayerFidelityMeter.Subject> subjects = subjects(r);
        assertTrue(r.model().graph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("If")));
        assertNotNull(MeasuringGraph.prefixes(r.prepared(), List.of(r.model(), r.uncompensated())));
        assertSameFigures(LayerFidelityMeter.measure(r.prepared(), subjects, false, samples, Progress.NONE, "test", LayerFidelityMeter.Pass.DEFAULT),
                LayerFidelityMeter.measure(r.prepared(), subjects, false, samples, Progress.NONE, "test", APART));
    }

    /** A float model listing a weight as a graph input too (IR 3's default value): nobody has to feed it. */
    @Test
    void aWeightListedAsAnInputIsNotAnInputOfTheCombinedGraph() {
        CalibrationSource samples = TestModels.gaussian("x", 3, 4, new long[] {1, 3, 16, 16});
        QuantizeRun.Result r = QwtOnnx.quantize(VerifierTest.cnnWithLargeBias(), samples, Int8Anyway.options(),
                Progress.NONE, null);
        dev.qwtonnx.onnx.TensorProto w = r.prepared().graph().getInitializer(0);
        Model f = r.prepared().withGraph(r.prepared().graph().toBuilder().addInput(dev.qwtonnx.onnx.ValueInfoProto
                .newBuilder().setName(w.getName()).setType(dev.qwtonnx.onnx.TypeProto.newBuilder().setTensorType(
                        dev.qwtonnx.onnx.TypeProto.Tensor.newBuilder().setElemType(w.getDataType())))).build());
        List<LayerFidelityMeter.Subject> subjects = subjects(r);
        MeasuringGraph.Prefixes p = MeasuringGraph.prefixes(f, List.of(r.model()));
        Model together = MeasuringGraph.combine(f, p.floatPrefix(), List.of(), List.of());
        assertEquals(List.of("x"), together.graph().getInputList().stream().map(v -> v.getName()).toList());
        assertSameFigures(LayerFidelityMeter.measure(f, subjects, false, samples, Progress.NONE, "test", LayerFidelityMeter.Pass.DEFAULT),
                LayerFidelityMeter.measure(f, subjects, false, samples, Progress.NONE, "test", APART));
    }

    /** Initializers of the same content (a model's and its uncompensated self's integer weights) reach ORT once. */
    @Test
    void identicalWeightsAreGivenToOrtOnce() {
        // A value_info of the shared input in both models, as shape inference leaves it: described once.
        Model f = TestModels.mlp(3);
        f = f.withGraph(f.graph().toBuilder().addValueInfo(f.graph().getInput(0)).build());
        MeasuringGraph.Prefixes p = MeasuringGraph.prefixes(f, List.of(f));
        java.util.function.UnaryOperator<String> s0 = MeasuringGraph.renamer(f.graph(), p.subject(0));
        Model copy = f.withGraph(MeasuringGraph.prefixed(f.graph(), s0, p.subject(0)));
        Model c = MeasuringGraph.combine(f, p.floatPrefix(), List.of(copy), List.of(p.floatPrefix() + "y", s0.apply("y")));
        long big = f.graph().getInitializerList().stream().filter(t -> t.getRawData().size() >= 4096).count();
        assertTrue(big > 0);
        assertEquals(2L * f.graph().getInitializerCount() - big, c.graph().getInitializerCount());
        assertEquals(1, c.graph().getValueInfoList().stream().filter(v -> v.getName().equals("x")).count());
        CalibrationSource samples = TestModels.gaussian("x", 4, 1, new long[] {1, 5, 32});
        try (dev.qwtonnx.calib.OrtRunner r = new dev.qwtonnx.calib.OrtRunner(c, List.of())) {
            Map<String, dev.qwtonnx.calib.FloatTensor> out = r.run(samples.iterator().next(),
                    List.of(p.floatPrefix() + "y", s0.apply("y")));
            assertTrue(java.util.Arrays.equals(out.get(p.floatPrefix() + "y").data(), out.get(s0.apply("y")).data()));
        }
    }

    /** Models importing one operator set at two versions cannot share a graph: measured apart instead. */
    @Test
    void modelsOfDifferentOpsetsAreMeasuredApart() {
        Model f = TestModels.smallCnn(1);
        ModelProto.Builder p = f.proto().toBuilder().clearOpsetImport();
        f.proto().getOpsetImportList().forEach(o -> p.addOpsetImport(o.getDomain().isEmpty()
                ? OperatorSetIdProto.newBuilder(o).setVersion(o.getVersion() + 1).build() : o));
        assertNull(MeasuringGraph.prefixes(f, List.of(new Model(p.build()))));
        assertNotNull(MeasuringGraph.prefixes(f, List.of(f)));
    }
}
