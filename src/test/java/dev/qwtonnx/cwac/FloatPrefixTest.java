package dev.qwtonnx.cwac;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Measuring sessions that start where quantization does, the float prefix run on a session of its own. */
class FloatPrefixTest {
    private static final int VOCAB = 8192;
    private static final int DIM = 32;

    /**
     * ids → Gather(a 1 MB table) + position → two MatMul layers, the first's output plus an additive
     * mask computed from the mask input: the table, its Add and the mask's arithmetic are the prefix.
     */
    static Model embedder() {
        ModelBuilder b = new ModelBuilder(5, 13).input("ids", TensorProto.DataType.INT64_VALUE, 1, -1)
                .input("mask", TensorProto.DataType.FLOAT_VALUE, 1, -1).output("y", TensorProto.DataType.FLOAT_VALUE, 1, -1, 16);
        String e = b.node("Gather", List.of(b.randomInit("table", 0.5, VOCAB, DIM), "ids"), "e");
        String e2 = b.node("Add", List.of(e, b.randomInit("pos", 0.1, DIM)), "e2");
        String inv = b.node("Sub", List.of(b.init("one", new long[0], new float[] {1}), "mask"), "inv");
        String big = b.node("Mul", List.of(inv, b.init("minus", new long[0], new float[] {-3})), "madd");
        String axes = "axes";
        String u = b.node("Unsqueeze", List.of(big, axes), "u");
        String h1 = b.node("MatMul", List.of(e2, b.randomInit("w1", 0.3, DIM, 64)), "h1");
        String a1 = b.node("Add", List.of(h1, b.randomInit("b1", 0.1, 64)), "a1");
        String s = b.node("Add", List.of(a1, u), "s");
        String r = b.node("Relu", List.of(s), "r");
        b.node("MatMul", List.of(r, b.randomInit("w2", 0.2, 64, 16)), "y");
        Model m = b.build();
        // Unsqueeze's axes are int64: added as such.
        return m.withGraph(m.graph().toBuilder().addInitializer(Tensors.int64Tensor(axes, new long[] {1}, new long[] {2}))
                .build());
    }

    static CalibrationSource data(int count, long seed) {
        Random rnd = new Random(seed);
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int t = 5 + 4 * (i % 3);
            long[] ids = new long[t];
            float[] mask = new float[t];
            for (int k = 0; k < t; k++) {
                ids[k] = rnd.nextInt(VOCAB);
                mask[k] = k < t - i % 2 ? 1 : 0;
            }
            out.add(new Sample("s" + i, Map.of("ids", HostTensor.ofLongs(new long[] {1, t}, ids), "mask",
                    HostTensor.ofFloats(new long[] {1, t}, mask))));
        }
        return CalibrationSources.ofList(out);
    }

    @Test
    void thePrefixEndsWhereQuantizationBegins() {
        Model prepared = QwtOnnx.prepare(embedder(), true, null);
        List<LayerPlan> layers = LayerMatcher.match(prepared, QuantOptions.defaults()).layers();
        assertEquals(2, layers.size());
        Set<String> names = new LinkedHashSet<>();
        layers.forEach(l -> names.add(l.name()));
        FloatPrefix.Split split = FloatPrefix.split(prepared.graph(), n -> names.contains(n.getName()));
        assertEquals(Set.of("e2", "u"), split.boundary());
        assertTrue(split.initializerBytes() >= 4L * VOCAB * DIM, "the table is the prefix's: " + split.initializerBytes());
        // On the quantized model, from its QuantizeLinear nodes: the same boundary.
        QuantizeRun.Result r = QwtOnnx.quantize(embedder(), data(12, 1), Int8Anyway.options(), Progress.NONE, null);
        assertEquals(split.boundary(),
                FloatPrefix.split(r.uncompensated().graph(), UnquantizedInputs::quantized).boundary());
    }

    /**
     * Known answer: the fits measured after the prefix are those measured with it in the session,
     * whether its boundary was kept from a pass batched otherwise (joined again per sample) or
     * computed on the calibration session, that session left open or released after the pass (as the
     * calibrate stage does where everything is kept) and made again.
     */
    @Test
    void cuttingThePrefixChangesNoFit() {
        for (CwacOptions cwac : List.of(CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0),
                CwacOptions.defaults())) {
            CalibrationSource calib = data(20, 2);
            // Float tables: the prefix cut is the float model's (int8 tables make it a quantized one, not cut).
            QuantizeRun.Result r = QwtOnnx.quantize(embedder(), calib,
                    Int8Anyway.options().withCwac(cwac.withMethod(CwacOptions.Method.NONE))
                            .withEmbeddings(dev.qwtonnx.quant.EmbeddingPrecision.FLOAT), Progress.NONE, null);
            Map<String, ChannelFit> whole = new Compensator(cwac, 4).compensate(r.prepared(), r.model(), calib, null,
                    Progress.NONE, null).fits();
            for (String how : List.of("handed over", "computed", "computed, released")) {
                boolean handedOver = how.equals("handed over");
                FloatPrefix prefix = FloatPrefix.plan(r.prepared(), r.plan().layers(), cwac);
                assertNotNull(prefix);
                try (dev.qwtonnx.calib.SessionOnDemand calibration = new dev.qwtonnx.calib.SessionOnDemand(
                        OrtRunner.forPasses(r.prepared(), prefix.boundary()), r.prepared(), prefix.boundary(), false)) {
                    prefix.attach(calibration);
                    if (handedOver) {
                        Batches.run(calibration.get(), calib, 3, prefix.boundary(), Progress.NONE, prefix::offer);
                        assertEquals(20, prefix.keptSamples());
                        assertTrue(prefix.keptAllOffered());
                    }
                    if (how.endsWith("released")) {
                        calibration.release();
                    }
                    Map<String, ChannelFit> cut = new Compensator(cwac, 4, WeightResiduals.NONE, prefix)
                            .compensate(r.prepared(), r.model(), calib, null, Progress.NONE, null).fits();
                    assertTrue(prefix.served() > 0, "measured after the prefix");
                    assertEquals(handedOver, prefix.computed() == 0, how + ": computed " + prefix.computed());
                    assertEquals(how.endsWith("released") ? 2 : 1, calibration.made(), how);
                    assertSameFits(whole, cut);
                }
            }
        }
    }

    /**
     * With the table in int8 (the default), the quantized model's start is no longer the float
     * prefix: compensation measures it rather than feeding the float model's values, so the fits
     * are those of the whole model.
     */
    @Test
    void anInt8TableIsMeasuredNotCutAsAFloatPrefix() {
        CwacOptions cwac = CwacOptions.defaults();
        CalibrationSource calib = data(20, 2);
        QuantizeRun.Result r = QwtOnnx.quantize(embedder(), calib,
                Int8Anyway.options().withCwac(cwac.withMethod(CwacOptions.Method.NONE)), Progress.NONE, null);
        assertTrue(r.model().graph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("Cast")), "int8 table");
        Map<String, ChannelFit> whole = new Compensator(cwac, 4).compensate(r.prepared(), r.model(), calib, null,
                Progress.NONE, null).fits();
        FloatPrefix prefix = FloatPrefix.plan(r.prepared(), r.plan().layers(), cwac);
        assertNotNull(prefix);
        try (OrtRunner calibration = OrtRunner.forPasses(r.prepared(), prefix.boundary())) {
            prefix.attach(calibration);
            Map<String, ChannelFit> cut = new Compensator(cwac, 4, WeightResiduals.NONE, prefix)
                    .compensate(r.prepared(), r.model(), calib, null, Progress.NONE, null).fits();
            assertEquals(0, prefix.served(), "served from the float prefix");
            assertSameFits(whole, cut);
        }
    }

    private static void assertSameFits(Map<String, ChannelFit> expected, Map<String, ChannelFit> got) {
        assertEquals(expected.keySet(), got.keySet());
        boolean corrects = false;
        for (String layer : expected.keySet()) {
            for (int c = 0; c < expected.get(layer).a().length; c++) {
                assertEquals(expected.get(layer).a()[c], got.get(layer).a()[c], 1e-9, layer + " channel " + c);
                assertEquals(expected.get(layer).b()[c], got.get(layer).b()[c], 1e-9, layer + " channel " + c);
                corrects |= Math.abs(expected.get(layer).a()[c] - 1) > 1e-4;
            }
        }
        assertTrue(corrects, "fits that correct something");
    }

    @Test
    void aPrefixThatIsNotTheQuantizedModelsIsNotUsed() {
        CwacOptions cwac = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.PARALLEL, 0);
        CalibrationSource calib = data(12, 3);
        QuantizeRun.Result r = QwtOnnx.quantize(embedder(), calib,
                Int8Anyway.options().withCwac(cwac.withMethod(CwacOptions.Method.NONE)), Progress.NONE, null);
        // Planned for the second layer only: its prefix runs through the first, which the model quantizes.
        FloatPrefix other = FloatPrefix.plan(r.prepared(), r.plan().layers().subList(1, 2), cwac);
        assertNotNull(other);
        try (OrtRunner calibration = OrtRunner.forPasses(r.prepared(), other.boundary())) {
            other.attach(calibration);
            new Compensator(cwac, 4, WeightResiduals.NONE, other).compensate(r.prepared(), r.model(), calib, null,
                    Progress.NONE, null);
            assertEquals(0, other.served());
        }
    }

    @Test
    void noPrefixWhereQuantizationBeginsAtTheInputsOrTheWeightsAreSmall() {
        CwacOptions cwac = CwacOptions.defaults();
        for (Model m : List.of(TestModels.smallCnn(7), TestModels.mlp(3))) {
            Model prepared = QwtOnnx.prepare(m, false, null);
            assertNull(FloatPrefix.plan(prepared, LayerMatcher.match(prepared, QuantOptions.defaults()).layers(), cwac));
        }
        Model prepared = QwtOnnx.prepare(embedder(), false, null);
        assertNull(FloatPrefix.plan(prepared, LayerMatcher.match(prepared, QuantOptions.defaults()).layers(),
                cwac.withMethod(CwacOptions.Method.NONE)), "plain PTQ measures nothing");
    }
}
