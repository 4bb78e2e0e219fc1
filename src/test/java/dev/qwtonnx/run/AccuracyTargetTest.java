package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.testutil.AudioFrontEnd;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.OutputMetric;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The accuracy target's search: joint re-measurement, the API's own metric, and the audio front-end case. */
class AccuracyTargetTest {
    /**
     * y = (x·Wa − x·Wb) + x·Wd + x·We with Wa and Wb equal and large: quantized together, a and b
     * cancel exactly, so the output's error comes from d and e alone; quantized alone, a (or b)
     * leaves a large error. Ranking layers by their error alone puts a and b first; only
     * measuring sets together finds that d and e are the layers that matter.
     */
    static Model cancelling() {
        ModelBuilder b = new ModelBuilder(5, 13).input("x", OrtTestSupport.FLOAT, 1, 7, 32)
                .output("y", OrtTestSupport.FLOAT, 1, 7, 16);
        float[] w = new float[32 * 16];
        java.util.Random r = new java.util.Random(11);
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        String a = b.node("MatMul", List.of("x", b.init("wa", new long[] {32, 16}, w)), "a");
        String bb = b.node("MatMul", List.of("x", b.init("wb", new long[] {32, 16}, w.clone())), "b");
        String d = b.node("MatMul", List.of("x", b.randomInit("wd", 0.2, 32, 16)), "d");
        String e = b.node("MatMul", List.of("x", b.randomInit("we", 0.2, 32, 16)), "e");
        String ab = b.node("Sub", List.of(a, bb), "ab");
        b.node("Add", List.of(b.node("Add", List.of(ab, d), "abd"), e), "y");
        return b.build();
    }

    /**
     * Default options with the layers that feed a log quantized: the audio front-end's all do, and stay float by
     * default (LogInputs); these tests exercise the search on its poor int8 form.
     */
    static QuantizeRun.Options logInputs() {
        return QuantizeRun.Options.defaults().withQuant(QuantOptions.defaults().withQuantizeLogInputs(true));
    }

    static QuantizeRun.Options plain(int budget) {
        return QuantizeRun.Options.defaults().withVerifyBetweenPasses(true)
                .withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE))
                .withQuant(new QuantOptions(8, false, EnumSet.of(LayerKind.CONV), WeightRounding.NEAREST, Set.of(), budget)
                        .withQuantizeLogInputs(true));
    }

    /** The weight each float layer of {@code r} reads, for the layers the run left in float. */
    static Set<String> floatWeights(QuantizeRun.Result r, List<String> layers) {
        Map<String, String> weight = r.prepared().graph().getNodeList().stream()
                .filter(n -> n.getOpType().equals("MatMul"))
                .collect(Collectors.toMap(NodeProto::getName, n -> n.getInput(1)));
        return layers.stream().map(weight::get).collect(Collectors.toCollection(TreeSet::new));
    }

    static double sqnr(QuantizeRun.Result r, CalibrationSource held) {
        return Fidelity.measure(r.prepared(), r.model(), held, Progress.NONE).get(0).meanSqnrDb();
    }

    @Test
    void theJointSearchFindsLayersThatOnlyMatterTogether() {
        CalibrationSource cal = TestModels.gaussian("x", 1, 16, new long[] {1, 7, 32});
        CalibrationSource held = TestModels.gaussian("x", 2, 6, new long[] {1, 7, 32});
        double target = 60;
        QuantizeRun.Result all = QwtOnnx.quantize(cancelling(), cal).heldOut(held).options(plain(0)).run();
        assertTrue(sqnr(all, held) < target, "all quantized already meets the target: " + sqnr(all, held));

        // The per-layer ranking keeps a and b, whose errors cancel: the output is no better.
        QuantizeRun.Result budget = QwtOnnx.quantize(cancelling(), cal).heldOut(held).options(plain(2)).run();
        assertEquals(Set.of("wa", "wb"), floatWeights(budget, budget.keptFloat().stream()
                .map(Sensitivity.LayerError::layer).toList()));
        assertTrue(sqnr(budget, held) < target, "the budget's choice meets the target: " + sqnr(budget, held));

        QuantizeRun.Result searched = QwtOnnx.quantize(cancelling(), cal).heldOut(held)
                .options(plain(0).withAccuracy(AccuracyOptions.NONE.withGoal(new AccuracyOptions.Goal("sqnr", null, target))))
                .run();
        AccuracySearch s = searched.accuracy();
        assertTrue(s.met(), s.toString());
        assertEquals(Set.of("wd", "we"), floatWeights(searched, s.returned().stream().map(AccuracySearch.Returned::layer)
                .toList()), s.toString());
        assertEquals(2, searched.plan().layers().size());
        assertTrue(sqnr(searched, held) >= target, "held-out SQNR " + sqnr(searched, held));
        assertTrue(searched.plan().rejected().stream().anyMatch(r -> r.contains("returned to float by the accuracy target")),
                searched.plan().rejected().toString());
    }

    @Test
    void anApplicationsOwnMetricDrivesTheSearch() {
        CalibrationSource cal = AudioFrontEnd.source(1, 24);
        CalibrationSource held = AudioFrontEnd.source(2, 8);
        AtomicInteger scored = new AtomicInteger();
        // The application's metric: mean absolute error of the log-mel features, negated (higher is better).
        OutputMetric logMelError = new OutputMetric() {
            @Override
            public String name() {
                return "-|log-mel error|";
            }

            @Override
            public double score(Map<String, FloatTensor> reference, Map<String, FloatTensor> quantized) {
                scored.incrementAndGet();
                float[] a = reference.get("mel").data();
                float[] b = quantized.get("mel").data();
                double sum = 0;
                for (int i = 0; i < a.length; i++) {
                    sum += Math.abs(a[i] - b[i]);
                }
                return -sum / a.length;
            }
        };
        double min = -0.5;
        QuantizeRun.Result plainRun = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held).options(logInputs()).run();
        double before = meanScore(logMelError, plainRun, held);
        assertTrue(before < min, "already within the application's bound: " + before);
        scored.set(0);

        QuantizeRun.Result r = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held).options(logInputs())
                .metric(logMelError, min).run();
        assertTrue(scored.get() >= 2 * held.size(), "the application's metric scored " + scored.get() + " samples");
        assertTrue(r.accuracy().met(), r.accuracy().toString());
        assertTrue(r.accuracy().target().get(0).startsWith("-|log-mel error| >= "), r.accuracy().target().toString());
        int returned = r.accuracy().returned().size();
        assertTrue(returned >= 1 && returned <= 2, r.accuracy().toString());
        assertTrue(meanScore(logMelError, r, held) >= min, "after compensation: " + meanScore(logMelError, r, held));
    }

    static double meanScore(OutputMetric m, QuantizeRun.Result r, CalibrationSource held) {
        dev.qwtonnx.verify.TargetFidelity tf = new dev.qwtonnx.verify.TargetFidelity(r.prepared(), held);
        return tf.measure(r.model(), List.of(new dev.qwtonnx.verify.TargetFidelity.Bound(m, 0))).values()[0];
    }

    /**
     * The audio front-end case: poor by default; --min-sqnr 20 holds on held-out audio with at most two layers
     * float, returned among those the default quantizes.
     */
    @Test
    void theAudioFrontEndReachesTwentyDecibelsWithAtMostTwoLayersFloat() {
        CalibrationSource cal = AudioFrontEnd.source(1, 24);
        CalibrationSource held = AudioFrontEnd.source(2, 8);
        // By default its layers all feed the log and stay float: the output is the float model's.
        QuantizeRun.Result asIs = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held).run();
        assertEquals(0, asIs.plan().layers().size(), asIs.plan().rejected().toString());
        assertTrue(sqnr(asIs, held) > 100, "held-out SQNR " + sqnr(asIs, held));
        QuantizeRun.Result plainRun = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held).options(logInputs()).run();
        assertTrue(sqnr(plainRun, held) < 15, "the front-end quantized is not poor: " + sqnr(plainRun, held));

        QuantizeRun.Result r = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held)
                .options(logInputs().withAccuracy(AccuracyOptions.NONE
                        .withGoal(new AccuracyOptions.Goal("sqnr", null, 20))))
                .run();
        assertTrue(r.accuracy().met(), r.accuracy().toString());
        assertTrue(r.accuracy().returned().size() <= 2, r.accuracy().toString());
        assertTrue(sqnr(r, held) >= 20, "held-out SQNR " + sqnr(r, held));
        // The search returns layers the written model would otherwise quantize: not those the cost model keeps float.
        assertEquals(plainRun.plan().layers().size() - r.accuracy().returned().size(), r.plan().layers().size(),
                plainRun.plan().rejected() + " / " + r.accuracy());
    }

    @Test
    void aTargetOutOfReachSaysByHowMuch() {
        CalibrationSource cal = AudioFrontEnd.source(1, 24);
        CalibrationSource held = AudioFrontEnd.source(2, 8);
        QuantizeRun.Result r = QwtOnnx.quantize(AudioFrontEnd.model(), cal).heldOut(held)
                .options(logInputs().withAccuracy(AccuracyOptions.NONE.withMaxFloat(1)
                        .withGoal(new AccuracyOptions.Goal("cosine", null, 0.9999))))
                .run();
        assertFalse(r.accuracy().met(), r.accuracy().toString());
        assertEquals(1, r.accuracy().returned().size(), r.accuracy().toString());
        assertTrue(r.accuracy().figure().matches("cosine of 'mel' 0\\.\\d+ < 0\\.99990 \\(short by 0\\.\\d+\\)"),
                r.accuracy().figure());
    }
}
