package dev.qwtonnx.cwac;

import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.StageRunner;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.EnumSet;
import java.util.Set;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** How compensation passes over the data: stages, the model slice each runs, kept float activations, batches. */
class CompensationPassesTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    /** MatMul → Add → Relu → MatMul → Add → MatMul with a dynamic batch and sequence: joinable samples. */
    static Model batchableMlp() {
        ModelBuilder b = new ModelBuilder(5, 13).input("x", F, -1, -1, 16).output("y", F, -1, -1, 8);
        String a1 = b.node("Add", List.of(b.node("MatMul", List.of("x", b.randomInit("w1", 0.3, 16, 24)), "m1"),
                b.randomInit("b1", 0.1, 24)), "a1");
        String r1 = b.node("Relu", List.of(a1), "r1");
        String a2 = b.node("Add", List.of(b.node("MatMul", List.of(r1, b.randomInit("w2", 0.3, 24, 16)), "m2"),
                b.randomInit("b2", 0.1, 16)), "a2");
        b.node("MatMul", List.of(a2, b.randomInit("w3", 0.3, 16, 8)), "y");
        return b.build();
    }

    static CalibrationSource data() {
        return TestModels.gaussian("x", 21, 20, new long[] {1, 5, 16}, new long[] {1, 9, 16}, new long[] {1, 9, 16});
    }

    private static QuantizeRun.Result quantize(Model m, CwacOptions cwac) {
        return quantize(m, data(), cwac);
    }

    private static QuantizeRun.Result quantize(Model m, CalibrationSource data, CwacOptions cwac) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(new QuantOptions(8, false, EnumSet.of(LayerKind.CONV)))
                .withCwac(cwac).withCalib(CalibOptions.defaults().withBatch(4));
        return QwtOnnx.quantize(m, data, o, Progress.NONE, null);
    }

    @Test
    void sliceKeepsOnlyWhatItsOutputsNeedAndComputesThemAlike() {
        Model m = batchableMlp();
        Model sliced = Slice.to(m, List.of("r1"));
        assertEquals(List.of("MatMul", "Add", "Relu"), sliced.graph().getNodeList().stream().map(NodeProto::getOpType).toList());
        assertEquals(List.of("w1", "b1"), sliced.graph().getInitializerList().stream().map(TensorProto::getName).toList());
        assertEquals(List.of("r1"), sliced.graph().getOutputList().stream().map(v -> v.getName()).toList());
        Sample s = data().iterator().next();
        try (OrtRunner full = new OrtRunner(m, List.of("r1")); OrtRunner part = new OrtRunner(sliced, List.of())) {
            assertEquals(java.util.Arrays.toString(full.run(s, List.of("r1")).get("r1").data()),
                    java.util.Arrays.toString(part.run(s, List.of("r1")).get("r1").data()));
        }
    }

    @Test
    void stagesGroupConsecutiveDepthsAndFindLayersFedByTheirOwnStage() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), TestModels.gaussian("x", 17, 4, new long[] {1, 4, 12, 12}),
                CwacOptions.defaults().withMethod(CwacOptions.Method.NONE));
        List<QdqLayer> layers = QdqLayers.find(r.uncompensated()).layers();
        List<List<QdqLayer>> perDepth = StageSchedule.stages(r.uncompensated(), layers);
        assertEquals(3, perDepth.size(), "a chain of three layers: three depths");
        for (List<QdqLayer> stage : perDepth) {
            assertEquals(List.of(), StageSchedule.fedByStage(r.uncompensated(), stage));
        }
        assertEquals(perDepth, StageSchedule.grouped(perDepth, 0));
        assertEquals(perDepth, StageSchedule.grouped(perDepth, 5));
        List<List<QdqLayer>> two = StageSchedule.grouped(perDepth, 2);
        assertEquals(List.of(1, 2), two.stream().map(List::size).toList());
        List<List<QdqLayer>> one = StageSchedule.grouped(perDepth, 1);
        assertEquals(layers.size(), one.get(0).size());
        assertEquals(List.of(layers.get(1).name(), layers.get(2).name()),
                StageSchedule.fedByStage(r.uncompensated(), one.get(0)).stream().map(QdqLayer::name).toList());
    }

    @Test
    void aPassMeasuresTheStagesAheadThatFitItsBudget() {
        long[] bytes = {50, 30, 40, 10};
        assertEquals(1, Compensator.ahead(bytes, 0, 100));
        assertEquals(3, Compensator.ahead(bytes, 1, 100));
        assertEquals(3, Compensator.ahead(bytes, 3, 100));
        // A stage beyond the budget on its own is still measured, alone.
        assertEquals(0, Compensator.ahead(bytes, 0, 10));
        // Stages are measured in order: one that does not fit ends the pass, though a later one would fit.
        assertEquals(0, Compensator.ahead(new long[] {50, 60, 1, 1}, 0, 100));
    }

    @Test
    void floatActivationsAreKeptOnlyForLayersMeasuredAgainstThem() {
        QuantizeRun.Result r = quantize(CwacPipelineTest.convChain(), TestModels.gaussian("x", 17, 4, new long[] {1, 4, 12, 12}),
                CwacOptions.defaults().withMethod(CwacOptions.Method.NONE));
        List<QdqLayer> layers = QdqLayers.find(r.uncompensated()).layers();
        List<String> names = layers.stream().map(QdqLayer::name).toList();
        assertEquals(3, names.size());
        CwacOptions d = CwacOptions.defaults();
        Map<CwacOptions, java.util.Set<String>> expected = Map.of(
                d.withSchedule(CwacOptions.Schedule.PARALLEL, 0), java.util.Set.of(names.get(0)),
                d.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 0), java.util.Set.copyOf(names),
                d.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 2), java.util.Set.of(names.get(0), names.get(1)),
                new CwacOptions(d.method(), CwacOptions.Target.LOCAL, d.schedule(), d.ridge(), d.maxGain(), d.gate(),
                        d.stages(), d.accept(), d.samples()), java.util.Set.of());
        for (Map.Entry<CwacOptions, java.util.Set<String>> e : expected.entrySet()) {
            // Chosen on the float graph before quantizing, as the compensator chooses on the quantized one.
            java.util.Set<String> onFloat = StageSchedule.globalTargets(r.prepared().graph(), r.plan().layers(),
                    dev.qwtonnx.quant.LayerPlan::name, dev.qwtonnx.quant.LayerPlan::input, e.getKey());
            java.util.Set<String> onQuant = StageSchedule.globalTargets(r.uncompensated().graph(), layers, QdqLayer::name,
                    QdqLayer::input, e.getKey());
            assertEquals(e.getValue(), onQuant, e.getKey().toString());
            assertEquals(onQuant, onFloat, e.getKey().toString());
        }
    }

    /**
     * x[1,3,32,32] → Conv(3→8) → Relu → Conv(8→48) → Relu → four times Conv(48→48) (Relu between) → y: a
     * first layer small enough that the int8 cost model keeps it in float, then layers it quantizes:
     * six depths grouped in four stages before the cost model, five after, in other groups.
     */
    static Model convsAfterASmallOne() {
        ModelBuilder b = new ModelBuilder(9, 13).input("x", F, 1, 3, 32, 32).output("y", F, 1, 48, 32, 32);
        String x = "x";
        long[][] convs = {{8, 3}, {48, 8}, {48, 48}, {48, 48}, {48, 48}, {48, 48}};
        for (int i = 0; i < convs.length; i++) {
            String out = i == convs.length - 1 ? "y" : "c" + i;
            b.node("Conv", "conv" + i, List.of(x, b.randomInit("w" + i, 0.2, convs[i][0], convs[i][1], 3, 3),
                    b.randomInit("b" + i, 0.1, convs[i][0])), List.of(out), dev.qwtonnx.model.Nodes.intsAttribute("pads", 1, 1, 1, 1));
            x = i == convs.length - 1 ? out : b.node("Relu", List.of(out), "r" + i);
        }
        return b.build();
    }

    /**
     * Compensation is planned on the layers the int8 cost model leaves: the float activations the
     * calibration pass keeps are the ones compensation compares with, so it makes no float session of
     * its own (one measuring session per stage), and every layer it measures against them is served.
     */
    @Test
    void calibrationKeepsTheFloatActivationsOfTheLayersTheCostModelLeaves() {
        Model m = convsAfterASmallOne();
        CalibrationSource data = TestModels.gaussian("x", 23, 12, new long[] {1, 3, 32, 32});
        QuantizeRun.Result r = QwtOnnx.quantize(m, data, QuantizeRun.Options.defaults(), Progress.NONE, null);
        List<QdqLayer> layers = QdqLayers.find(r.uncompensated()).layers();
        List<String> quantized = layers.stream().map(QdqLayer::name).toList();
        assertTrue(quantized.size() >= 2 && !quantized.contains("conv0"),
                "the cost model keeps the 3-channel layer in float and quantizes later ones: " + quantized);
        int stages = StageSchedule.grouped(StageSchedule.stages(r.uncompensated(), layers),
                CwacOptions.defaults().stageCount()).size();
        StageRunner.Timing compensate = r.timings().stream().filter(t -> t.stage().equals("compensate")).findFirst()
                .orElseThrow();
        assertEquals(stages, compensate.sessions(), "a measuring session per stage, no float session: " + compensate);
    }

    @Test
    void parallelIsSequentialInOneStage() {
        CwacOptions parallel = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        Map<String, ChannelFit> a = quantize(batchableMlp(), parallel).compensation().fits();
        Map<String, ChannelFit> b = quantize(batchableMlp(), parallel.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 1))
                .compensation().fits();
        assertEquals(a.keySet(), b.keySet());
        for (String l : a.keySet()) {
            assertEquals(java.util.Arrays.toString(a.get(l).a()), java.util.Arrays.toString(b.get(l).a()), l);
            assertEquals(java.util.Arrays.toString(a.get(l).b()), java.util.Arrays.toString(b.get(l).b()), l);
        }
    }

    /**
     * The float activations quantize keeps from its calibration pass are those of the same
     * samples: fitting with them gives the fits of a compensation that computes its own.
     */
    @Test
    void keptFloatActivationsFitAsComputedOnes() {
        for (CwacOptions c : List.of(CwacOptions.defaults().withSchedule(CwacOptions.Schedule.SEQUENTIAL, 0),
                CwacOptions.defaults().withGate(CwacOptions.Gate.CV))) {
            QuantizeRun.Result r = quantize(batchableMlp(), c);
            Compensator.Result fresh = new Compensator(c, 4).compensate(r.prepared(), r.uncompensated(), data(),
                    Progress.NONE);
            Compensator.Result unbatched = new Compensator(c, 1).compensate(r.prepared(), r.uncompensated(), data(),
                    Progress.NONE);
            for (String l : fresh.fits().keySet()) {
                for (Compensator.Result other : List.of(fresh, unbatched)) {
                    double[] x = r.compensation().fits().get(l).a();
                    double[] y = other.fits().get(l).a();
                    for (int ch = 0; ch < x.length; ch++) {
                        assertEquals(x[ch], y[ch], 1e-4 * Math.abs(x[ch]), l + " channel " + ch + " with " + c);
                    }
                }
            }
        }
    }

    @Test
    void floatReferenceKeepsWithinItsBudgetAndRecomputesWhatItMisses() {
        Model m = batchableMlp();
        List<String> outs = List.of("a1", "a2");
        Iterator<Batches.Batch> it = Batches.of(data(), 4, 8);
        Batches.Batch first = it.next();
        Batches.Batch second = it.next();
        try (FloatReference kept = FloatReference.of(m, outs, 1 << 20);
                FloatReference none = FloatReference.of(m, outs, 0)) {
            Map<String, FloatTensor> got = kept.get(first, outs);
            assertSame(got, kept.get(first, outs), "computed once, then kept");
            assertTrue(kept.keptBytes() > 0);
            assertNotSame(none.get(first, outs), none.get(first, outs), "nothing kept without a budget");
            assertEquals(0, none.keptBytes());
            // The same position with another sample is not the kept batch.
            Batches.Batch other = new Batches.Batch(second.sample(), second.parts(), first.ordinals().subList(0, second.count()));
            assertNotSame(got, kept.get(other, outs));
            // Once a batch was refused for the budget (above), one not kept is computed for what is asked only.
            Map<String, FloatTensor> asked = none.get(second, List.of("a2"));
            assertEquals(Set.of("a2"), asked.keySet());
            assertArrayEquals(kept.get(second, outs).get("a2").data(), asked.get("a2").data(), 0f);

            // On the calibration pass's session: a batch offered and kept is served without it, so the session can
            // be released; one refused says so, and asked for after the release makes the session again.
            try (dev.qwtonnx.calib.SessionOnDemand session = new dev.qwtonnx.calib.SessionOnDemand(
                    OrtRunner.forPasses(m, outs), m, outs, false)) {
                Map<String, FloatTensor> firstOut = session.get().run(first.sample(), outs);
                long oneBatch = 4L * (firstOut.get("a1").data().length + firstOut.get("a2").data().length);
                try (FloatReference pass = FloatReference.on(session, outs, oneBatch)) {
                    pass.offer(first, firstOut);
                    assertTrue(pass.keptAllOffered());
                    session.release();
                    assertSame(firstOut.get("a1"), pass.get(first, outs).get("a1"), "served as handed over");
                    assertEquals(1, session.made(), "without the session");
                    pass.offer(second, session.get().run(second.sample(), outs));
                    assertFalse(pass.keptAllOffered(), "the second batch is over the budget");
                    session.release();
                    Map<String, FloatTensor> again = pass.get(second, List.of("a2"));
                    assertEquals(3, session.made(), "made again for the batch not kept");
                    assertArrayEquals(kept.get(second, outs).get("a2").data(), again.get("a2").data(), 0f);
                }
            }
        }
    }

    @Test
    void statsOfAJoinedBatchSplitBySampleAddUpToTheWhole() {
        int channels = 3;
        float[] q = new float[2 * 4 * channels];
        float[] f = new float[q.length];
        java.util.Random rnd = new java.util.Random(3);
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) rnd.nextGaussian();
            f[i] = q[i] * 1.1f + (float) rnd.nextGaussian() * 0.1f;
        }
        FloatTensor yq = new FloatTensor(q, new long[] {2, 4, channels});
        FloatTensor yf = new FloatTensor(f, new long[] {2, 4, channels});
        ChannelStats whole = new ChannelStats(channels);
        whole.add(yq, yf, 2);
        ChannelStats first = new ChannelStats(channels);
        ChannelStats second = new ChannelStats(channels);
        first.add(yq, yf, 2, 0, 2);
        second.add(yq, yf, 2, 1, 2);
        ChannelStats sum = ChannelStats.sum(first, second);
        for (int c = 0; c < channels; c++) {
            assertEquals(4, first.n[c]);
            assertEquals(whole.n[c], sum.n[c]);
            assertEquals(whole.sqf[c], sum.sqf[c], 1e-9);
            assertEquals(whole.sff[c], sum.sff[c], 1e-9);
        }
        FloatTensor convQ = new FloatTensor(q, new long[] {2, channels, 2, 2});
        FloatTensor convF = new FloatTensor(f, new long[] {2, channels, 2, 2});
        ChannelStats convWhole = new ChannelStats(channels);
        convWhole.add(convQ, convF, 1);
        ChannelStats convA = new ChannelStats(channels);
        convA.add(convQ, convF, 1, 0, 2);
        convA.add(convQ, convF, 1, 1, 2);
        for (int c = 0; c < channels; c++) {
            assertEquals(convWhole.sq[c], convA.sq[c], 1e-9);
            assertEquals(8, convA.n[c]);
        }
    }
}
