package dev.qwtonnx.e2e;

import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.CompensateRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.testutil.EmbeddingFidelity;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.MiniLm;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** all-MiniLM-L6-v2 (from its Maven artifact) quantized end to end, calibrated on `fortunes`. */
@Tag("model")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MiniLmEndToEndTest {
    static final int WEIGHT_MATMULS = 36;

    Model floatModel;
    List<Sample> calib;
    List<Sample> eval;

    @BeforeAll
    void load(@TempDir Path dir) throws Exception {
        assumeTrue(Fortunes.available(), "Debian's fortunes package is not installed (.ci/run installs it)");
        List<String> sentences = Fortunes.load(2026);
        calib = MiniLm.samples(sentences.subList(0, 32), 128);
        eval = MiniLm.samples(sentences.subList(32, 132), 128);
        floatModel = MiniLm.floatModel(dir);
    }

    private QuantizeRun.Result quantize(CwacOptions cwac) {
        return QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib),
                QuantizeRun.Options.defaults().withCwac(cwac), Progress.NONE, null);
    }

    /** With float tables: these runs measure what compensation recovers of the weights' rounding alone. */
    private QuantizeRun.Result quantize(int bits, WeightRounding rounding, CwacOptions cwac) {
        QuantOptions q = new QuantOptions(bits, false, EnumSet.of(LayerKind.CONV), rounding);
        return QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), QuantizeRun.Options.defaults().withQuant(q)
                .withCwac(cwac).withEmbeddings(dev.qwtonnx.quant.EmbeddingPrecision.FLOAT),
                Progress.NONE, null);
    }

    /**
     * At 4-bit weights plain PTQ loses a lot against 8 bits. The defaults (GPTQ rounding below 8 bits,
     * then CWAC) recover more than half of it; CWAC alone on round-to-nearest weights recovers part of it.
     * Each threshold sits just below the figure printed.
     */
    @Test
    void atFourBitsTheDefaultsRecoverMoreThanHalfOfWhatPlainPtqLoses() {
        CwacOptions none = CwacOptions.defaults().withMethod(CwacOptions.Method.NONE);
        EmbeddingFidelity w8 = EmbeddingFidelity.measure(floatModel, quantize(8, WeightRounding.NEAREST, none).model(), eval);
        EmbeddingFidelity plain = EmbeddingFidelity.measure(floatModel,
                quantize(4, WeightRounding.NEAREST, none).model(), eval);
        EmbeddingFidelity cwacOnly = EmbeddingFidelity.measure(floatModel,
                quantize(4, WeightRounding.NEAREST, CwacOptions.defaults()).model(), eval);
        QuantizeRun.Result best = quantize(4, WeightRounding.AUTO, CwacOptions.defaults());
        EmbeddingFidelity gptq = EmbeddingFidelity.measure(floatModel, best.uncompensated(), eval);
        EmbeddingFidelity both = EmbeddingFidelity.measure(floatModel, best.model(), eval);
        System.out.printf("MiniLM W8 none %s; W4 none %s; W4 cwac %s; W4 gptq %s; W4 gptq+cwac %s%n", w8, plain,
                cwacOnly, gptq, both);
        double lost = w8.mean() - plain.mean();
        assertTrue(lost > 0.09, "4-bit weights should cost something: " + lost);
        assertTrue(both.mean() - plain.mean() >= 0.6 * lost, "recovered " + (both.mean() - plain.mean()) + " of " + lost);
        assertTrue(cwacOnly.mean() >= plain.mean() + 0.015, "cwac " + cwacOnly + " vs none " + plain);
        assertTrue(gptq.mean() >= plain.mean() + 0.055, "gptq " + gptq + " vs nearest " + plain);
        assertTrue(both.mean() >= gptq.mean() - 0.001, "gptq+cwac " + both + " vs gptq " + gptq);
    }

    /**
     * Quantized at a higher opset (ReduceMean's axes and Split are rewritten at 18, Q/DQ are the
     * opset-19/21 versions), MiniLM keeps every MatMul fused and the same fidelity as at 13 (plain
     * PTQ, so only the opset differs).
     */
    @Test
    void atAHigherTargetOpsetTheFidelityIsTheSame() {
        QuantizeRun.Options at13 = QuantizeRun.Options.defaults().withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE));
        QuantizeRun.Result base = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), at13, Progress.NONE, null);
        EmbeddingFidelity f13 = EmbeddingFidelity.measure(floatModel, base.model(), eval);
        for (long opset : new long[] {17, 21}) {
            QuantizeRun.Result r = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), at13.withTargetOpset(opset),
                    Progress.NONE, null);
            assertEquals(opset, r.model().opsetVersion(""));
            Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
            assertEquals(WEIGHT_MATMULS, ops.getOrDefault("MatMulIntegerToFloat", 0), ops.toString());
            EmbeddingFidelity fN = EmbeddingFidelity.measure(floatModel, r.model(), eval);
            System.out.printf("MiniLM plain PTQ at opset 13 %s; at opset %d %s%n", f13, opset, fN);
            assertEquals(f13.mean(), fN.mean(), 0.001, "opset " + opset + " " + fN + " vs 13 " + f13);
            assertEquals(f13.min(), fN.min(), 0.002, "opset " + opset + " " + fN + " vs 13 " + f13);
        }
    }

    @Test
    void everyWeightMatMulRunsAsAnIntegerKernelAndEmbeddingsStayClose() {
        long t0 = System.nanoTime();
        QuantizeRun.Result r = quantize(CwacOptions.defaults());
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(WEIGHT_MATMULS, r.plan().layers().size());
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(WEIGHT_MATMULS, ops.getOrDefault("MatMulIntegerToFloat", 0), ops.toString());
        EmbeddingFidelity fid = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
        EmbeddingFidelity none = EmbeddingFidelity.measure(r.prepared(), r.uncompensated(), eval);
        System.out.printf("MiniLM cwac (default) %s; none %s; quantize %.1f s; ORT ops %s%n", fid, none, seconds, ops);
        // Above langchain4j's dynamic int8 model (0.9902 / 0.9735), just below the figures printed (0.9908 / 0.9804
        // on the cpu target's 7-bit weights; the full 8-bit grid of cpu-vnni gives 0.9921 / 0.9852).
        assertTrue(fid.mean() >= 0.9903 && fid.min() >= 0.978, "cwac " + fid);
        assertTrue(fid.mean() >= none.mean() - 0.001, "cwac " + fid + " vs none " + none);
    }
    /**
     * Our own QOperator output without compensation (MatMulIntegerToFloat for every weight MatMul),
     * compensated afterwards as another tool's model: CWAC folds into b_scale and the float bias input.
     */
    @Test
    void ourQOperatorOutputIsCompensatedAfterwards() throws Exception {
        // A QOperator model's integer kernels are its arithmetic: on x86 without VNNI they saturate the full-range
        // weights, and that error, not the rounding this test measures compensation on, decides.
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.qwtonnx.ort.CpuFeatures.current().lacksInt8DotProduct(),
                "this CPU's u8*s8 kernels saturate full-range weights");
        // Float tables, as the gain asserted is compensation's of the weights' rounding.
        // The full-range s8 form other tools write (cpu-vnni), lowered to QOperator, as another tool's model.
        QuantizeRun.Result r = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), QuantizeRun.Options.defaults()
                .withQuant(dev.qwtonnx.quant.QuantOptions.defaults().withTarget(dev.qwtonnx.target.Target.named("cpu-vnni")))
                .withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE))
                .withEmbeddings(dev.qwtonnx.quant.EmbeddingPrecision.FLOAT), Progress.NONE, null);
        Model qop = QwtOnnx.toQOperator(r.model(), false, null);
        List<Sample> accept = MiniLm.samples(Fortunes.load(2026).subList(132, 140), 128);
        CompensateRun.Result c = QwtOnnx.compensate(floatModel, qop, CalibrationSources.ofList(calib),
                CalibrationSources.ofList(accept), CwacOptions.compensateDefaults(), Progress.NONE, null);
        EmbeddingFidelity before = EmbeddingFidelity.measure(floatModel, qop, eval);
        EmbeddingFidelity after = EmbeddingFidelity.measure(floatModel, c.model(), eval);
        var counts = new java.util.TreeMap<String, Integer>();
        c.compensation().choices().forEach(x -> counts.merge(x.choice().toString(), 1, Integer::sum));
        System.out.printf("MiniLM ours --method none --format qoperator: %d layers (%d left), embedding cosine %s -> %s;"
                + " stages kept %s%n", c.compensation().layers().size(), c.compensation().skipped().size(), before, after,
                counts);
        assertEquals(WEIGHT_MATMULS, c.compensation().layers().size(), c.compensation().skipped().toString());
        assertEquals(qop.graph().getNodeList(), c.model().graph().getNodeList());
        assertEquals(OrtKernels.optimizedOpCounts(qop), OrtKernels.optimizedOpCounts(c.model()));
        // Output acceptance keeps a stage only beyond the noise of its per-sample gain (decision 0017):
        // never worse on the mean, and the worst sentence gains (0.9819 -> 0.9856 as measured).
        assertTrue(after.mean() >= before.mean(), before + " -> " + after);
        assertTrue(after.min() >= before.min() + 0.002, before + " -> " + after);
    }
}
