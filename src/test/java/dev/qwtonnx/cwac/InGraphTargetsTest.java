package dev.qwtonnx.cwac;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.TestModels;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Targets the measuring run computes itself: local targets from the weights' rounding residual
 * ({@link ResidualTarget}), and the global targets of layers nothing quantized feeds
 * ({@link UnquantizedInputs}).
 */
class InGraphTargetsTest {
    private static final CwacOptions LOCAL = new CwacOptions(CwacOptions.Method.CWAC, CwacOptions.Target.LOCAL,
            CwacOptions.Schedule.PARALLEL, 0.01, 2.0, CwacOptions.Gate.NONE, 0, CwacOptions.Accept.NONE,
            CwacOptions.DEFAULT_SAMPLES);

    private static QuantizeRun.Result quantize(Model m, CalibrationSource data, CwacOptions cwac) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(new QuantOptions(8, false, EnumSet.of(LayerKind.CONV)))
                .withCwac(cwac).withCalib(CalibOptions.defaults().withBatch(4));
        return QwtOnnx.quantize(m, data, o, Progress.NONE, null);
    }

    private static CalibrationSource convData() {
        return TestModels.gaussian("x", 17, 6, new long[] {1, 4, 12, 12});
    }

    /** Fits with every local target measured as a float copy of its layer (the reference the residual replaces). */
    private static Map<String, ChannelFit> withFloatCopies(Model m, CalibrationSource data) {
        System.setProperty(StageTargets.FLOAT_COPIES, "true");
        try {
            return quantize(m, data, LOCAL).compensation().fits();
        } finally {
            System.clearProperty(StageTargets.FLOAT_COPIES);
        }
    }

    @Test
    void residualTargetsGiveTheFitsFloatCopiesGive() {
        // MatMul with a float bias Add and without bias; 2-D MatMul with its int32 bias Add (ORT's Gemm form);
        // Conv with and without bias; Gemm (transB) with bias.
        Map<Model, CalibrationSource> cases = Map.of(CompensationPassesTest.batchableMlp(), CompensationPassesTest.data(),
                CwacPipelineTest.convChain(), convData(),
                TestModels.smallCnn(7), TestModels.gaussian("x", 5, 8, new long[] {1, 3, 16, 16}),
                TestModels.mlp2d(3), TestModels.gaussian("x", 6, 8, new long[] {8, 16}));
        for (Map.Entry<Model, CalibrationSource> c : cases.entrySet()) {
            QuantizeRun.Result r = quantize(c.getKey(), c.getValue(), LOCAL);
            // Every layer of these models takes the residual path.
            GraphEditor g = new GraphEditor(r.uncompensated().graph());
            GraphEditor fg = new GraphEditor(r.prepared().graph());
            for (QdqLayer l : QdqLayers.find(r.uncompensated()).layers()) {
                assertNotNull(ResidualTarget.of(g, fg, l, r.compensation().floatLayers().get(l.name()), null), l.name());
            }
            Map<String, ChannelFit> residual = r.compensation().fits();
            Map<String, ChannelFit> copies = withFloatCopies(c.getKey(), c.getValue());
            assertEquals(copies.keySet(), residual.keySet());
            assertTrue(copies.size() >= 2, "layers compared: " + copies.keySet());
            for (String layer : copies.keySet()) {
                double[] a0 = copies.get(layer).a();
                double[] b0 = copies.get(layer).b();
                double[] a1 = residual.get(layer).a();
                double[] b1 = residual.get(layer).b();
                double gain = 0;
                double shift = 0;
                for (int ch = 0; ch < a0.length; ch++) {
                    gain = Math.max(gain, Math.abs(a0[ch] - 1));
                    shift = Math.max(shift, Math.abs(b0[ch]));
                }
                assertTrue(gain > 1e-4, layer + ": the fit corrects something (else the comparison says nothing)");
                // The residual holds W − Ŵ to 1/126 of its largest value: the fits move by a few percent of the correction.
                for (int ch = 0; ch < a0.length; ch++) {
                    assertEquals(a0[ch], a1[ch], 0.05 * gain + 1e-6, layer + " channel " + ch + " gain");
                    assertEquals(b0[ch], b1[ch], 0.05 * shift + 1e-6, layer + " channel " + ch + " shift");
                }
            }
        }
    }

    @Test
    void residualIsTheWeightMinusItsRoundingOnSevenBits() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), convData(), LOCAL);
        GraphEditor g = new GraphEditor(r.uncompensated().graph());
        GraphEditor fg = new GraphEditor(r.prepared().graph());
        QdqLayer l = QdqLayers.find(r.uncompensated()).layers().get(1); // c2: a 3x3 Conv, channel axis 0
        ResidualTarget.Residual res = ResidualTarget.of(g, fg, l, r.compensation().floatLayers().get(l.name()), null);
        NodeProto wdq = g.producer(res.node().getInput(1));
        float[] w = Tensors.floats(fg.initializer(res.floatNode().getInput(1)));
        float[] q = Tensors.floats(g.initializer(wdq.getInput(0)));
        float[] s = Tensors.floats(g.initializer(wdq.getInput(1)));
        int perChannel = w.length / s.length;
        int[] largest = new int[s.length];
        for (int i = 0; i < w.length; i++) {
            int c = i / perChannel;
            double expected = w[i] - q[i] * s[c];
            assertTrue(Math.abs(expected) <= 0.5001 * s[c], "round to nearest: within half a step");
            assertEquals(expected, res.values()[i] * res.scales()[c], 0.5001 * res.scales()[c], "element " + i);
            largest[c] = Math.max(largest[c], Math.abs(res.values()[i]));
        }
        for (int c = 0; c < s.length; c++) {
            assertEquals(ResidualTarget.LEVELS, largest[c], "each channel's largest residual on the full 7-bit range");
        }
    }

    /**
     * A residual computed ahead from the float weight and its rounding is the one computed from the
     * quantized graph, and is used only where taken against the rounding the graph holds.
     */
    @Test
    void aResidualComputedAheadIsUsedOnlyAgainstTheWeightTheGraphHolds() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), convData(), LOCAL);
        GraphEditor g = new GraphEditor(r.uncompensated().graph());
        GraphEditor fg = new GraphEditor(r.prepared().graph());
        QdqLayer l = QdqLayers.find(r.uncompensated()).layers().get(1);
        FloatLayer f = r.compensation().floatLayers().get(l.name());
        ResidualTarget.Residual fromGraph = ResidualTarget.of(g, fg, l, f, null);
        dev.qwtonnx.onnx.TensorProto w = fg.initializer(f.node().getInput(1));
        dev.qwtonnx.quant.QuantizedWeight rounding = dev.qwtonnx.quant.QuantizedWeight.nearest(Tensors.floatView(w),
                Tensors.dims(w), 0, dev.qwtonnx.quant.QuantOptions.defaults()
                        .weightQmax());
        ResidualTarget.WeightResidual early = ResidualTarget.of(Tensors.floatView(w), Tensors.dims(w), 0, rounding);
        assertArrayEquals(fromGraph.values(), early.values());
        assertArrayEquals(fromGraph.scales(), early.scales());
        // Used: the very arrays computed ahead end in the residual.
        assertSame(early.values(), ResidualTarget.of(g, fg, l, f, () -> early).values());
        // Taken against another rounding (one step off in one element): computed again from the graph.
        byte[] other = rounding.values().clone();
        other[0] = (byte) (other[0] == 0 ? 1 : other[0] - Integer.signum(other[0]));
        ResidualTarget.WeightResidual stale = ResidualTarget.of(Tensors.floatView(w), Tensors.dims(w), 0,
                new dev.qwtonnx.quant.QuantizedWeight(rounding.scales(), other));
        ResidualTarget.Residual used = ResidualTarget.of(g, fg, l, f, () -> stale);
        assertNotSame(stale.values(), used.values());
        assertArrayEquals(fromGraph.values(), used.values());
        // Nothing computed ahead (a failed task gives null): from the graph.
        assertArrayEquals(fromGraph.values(), ResidualTarget.of(g, fg, l, f, () -> null).values());
    }

    @Test
    void aWeightThatIsNotTheFloatOneRoundedKeepsTheFloatCopy() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), convData(), LOCAL);
        QdqLayer l = QdqLayers.find(r.uncompensated()).layers().get(1);
        FloatLayer f = r.compensation().floatLayers().get(l.name());
        // The float model's weight doubled: the quantized one is no rounding of it (another tool's rescaling).
        GraphEditor fg = new GraphEditor(r.prepared().graph());
        String wName = f.node().getInput(1);
        float[] w = Tensors.floats(fg.initializer(wName));
        for (int i = 0; i < w.length; i++) {
            w[i] *= 2;
        }
        fg.putInitializer(Tensors.floatTensor(wName, Tensors.dims(fg.initializer(wName)), w));
        assertNull(ResidualTarget.of(new GraphEditor(r.uncompensated().graph()), fg, l, f, null));
    }

    @Test
    void onlyLayersNothingQuantizedFeedsReadTheFloatModelsActivation() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), convData(),
                CwacOptions.defaults().withMethod(CwacOptions.Method.NONE));
        List<QdqLayer> layers = QdqLayers.find(r.uncompensated()).layers();
        GraphEditor g = new GraphEditor(r.uncompensated().graph());
        assertEquals("x", UnquantizedInputs.of(g, layers.get(0)), "the first Conv quantizes the model input");
        assertNull(UnquantizedInputs.of(g, layers.get(1)), "the second reads the first's quantized output");
        assertNull(UnquantizedInputs.of(g, layers.get(2)));

        // The calibration pass keeps float activations only for global targets some layer feeds.
        List<String> names = layers.stream().map(QdqLayer::name).toList();
        CwacOptions d = CwacOptions.defaults();
        Map<CwacOptions, Set<String>> expected = Map.of(
                d.withSchedule(CwacOptions.Schedule.PARALLEL, 0), Set.of(),
                d.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 0), Set.of(names.get(1), names.get(2)),
                d.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 2), Set.of(names.get(1)),
                LOCAL, Set.of());
        for (Map.Entry<CwacOptions, Set<String>> e : expected.entrySet()) {
            assertEquals(e.getValue(), StageSchedule.referenceTargets(r.prepared().graph(), r.plan().layers(),
                    dev.qwtonnx.quant.LayerPlan::name, dev.qwtonnx.quant.LayerPlan::input, e.getKey()), e.getKey().toString());
        }
    }

    /**
     * Known answer for a first layer's global target computed in the measuring run: the fit equals
     * the one from the float model's own activation and the quantized model's output, each from a
     * session of its own.
     */
    @Test
    void aFirstLayersFitIsTheFitAgainstTheFloatModel() {
        CwacOptions parallel = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), convData(), parallel);
        QdqLayer first = QdqLayers.find(r.uncompensated()).layers().get(0);
        FloatLayer f = r.compensation().floatLayers().get(first.name());
        ChannelStats stats = new ChannelStats(first.channels());
        try (OrtRunner floats = new OrtRunner(r.prepared(), List.of(f.output()));
                OrtRunner quant = new OrtRunner(r.uncompensated(), List.of(first.output()))) {
            for (Sample s : convData()) {
                FloatTensor yf = floats.run(s, List.of(f.output())).get(f.output());
                FloatTensor yq = quant.run(s, List.of(first.output())).get(first.output());
                stats.add(yq, yf, 1);
            }
        }
        ChannelFit expected = Solver.fit(stats, parallel.method(), first.hasBias(), parallel.ridge(), parallel.maxGain());
        ChannelFit got = r.compensation().fits().get(first.name());
        for (int c = 0; c < first.channels(); c++) {
            assertEquals(expected.a()[c], got.a()[c], 1e-5, "channel " + c);
            assertEquals(expected.b()[c], got.b()[c], 1e-5, "channel " + c);
        }
        assertTrue(java.util.Arrays.stream(got.a()).anyMatch(a -> Math.abs(a - 1) > 1e-4), "a fit that corrects something");
    }

    /**
     * The fits measure on the capped samples where they give every channel {@link Compensator#MIN_ROWS}
     * rows, on more where a layer has one row per sample (a classifier's head).
     */
    @Test
    void aLayerWithFewRowsPerSampleIsMeasuredOnMoreSamples() {
        CwacOptions parallel = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        int cap = parallel.samples();
        // smallCnn: Convs with 64-256 positions per sample, then a Gemm with one row per sample.
        QuantizeRun.Result r = quantize(TestModels.smallCnn(7), TestModels.gaussian("x", 5, 50, new long[] {1, 3, 16, 16}),
                parallel);
        for (QdqLayer l : r.compensation().layers()) {
            long rowsPerChannel = r.compensation().fits().get(l.name()).count() / l.channels();
            if (l.kind() == LayerKind.GEMM) {
                assertEquals(Compensator.MIN_ROWS, rowsPerChannel, "the head: one row per sample, up to MIN_ROWS samples");
            } else {
                assertTrue(rowsPerChannel >= 64L * Compensator.MIN_ROWS, l.name() + ": " + rowsPerChannel);
            }
        }
        // Many rows per sample: the cap holds (convChain: 144 positions per sample).
        QuantizeRun.Result chain = quantize(CwacPipelineTest.convChain(),
                TestModels.gaussian("x", 17, 50, new long[] {1, 4, 12, 12}), parallel);
        for (QdqLayer l : chain.compensation().layers()) {
            assertEquals(cap * 144L, chain.compensation().fits().get(l.name()).count() / l.channels(), l.name());
        }
        // Fewer samples than MIN_ROWS rows need: all of them, no more.
        QuantizeRun.Result few = quantize(TestModels.smallCnn(7), TestModels.gaussian("x", 5, 20, new long[] {1, 3, 16, 16}),
                parallel);
        for (QdqLayer l : few.compensation().layers()) {
            if (l.kind() == LayerKind.GEMM) {
                assertEquals(20, few.compensation().fits().get(l.name()).count() / l.channels());
            }
        }
    }

    @Test
    void residualSumsAreTheSumsOfTheTarget() {
        float[] q = {0.5f, -1f, 2f, 0.25f, 3f, -0.5f};
        float[] r = {0.01f, 0.02f, -0.03f, 0.0f, 0.05f, -0.01f};
        float[] f = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            f[i] = q[i] + r[i];
        }
        long[] shape = {1, 2, 3};
        ChannelStats viaResidual = new ChannelStats(3);
        viaResidual.add(new FloatTensor(q, shape), new FloatTensor(r, shape), true, 2, 0, 1);
        ChannelStats direct = new ChannelStats(3);
        direct.add(new FloatTensor(q, shape), new FloatTensor(f, shape), 2);
        for (int c = 0; c < 3; c++) {
            assertEquals(direct.n[c], viaResidual.n[c]);
            assertEquals(direct.sf[c], viaResidual.sf[c], 1e-6);
            assertEquals(direct.sqf[c], viaResidual.sqf[c], 1e-6);
            assertEquals(direct.sff[c], viaResidual.sff[c], 1e-6);
            assertEquals(direct.sqq[c], viaResidual.sqq[c], 0);
        }
    }
}
