package dev.qwtonnx.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.testutil.EmbeddingFidelity;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.MiniLm;
import dev.qwtonnx.verify.OrtKernels;
import java.nio.file.Path;
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

    private QwtOnnx.Result quantize(CwacOptions cwac) {
        return QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib),
                QwtOnnx.Options.defaults().withCwac(cwac), Progress.NONE, null);
    }

    @Test
    void everyWeightMatMulRunsAsAnIntegerKernelAndEmbeddingsStayClose() {
        long t0 = System.nanoTime();
        QwtOnnx.Result r = quantize(CwacOptions.defaults());
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(WEIGHT_MATMULS, r.plan().layers().size());
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(WEIGHT_MATMULS, ops.getOrDefault("MatMulIntegerToFloat", 0), ops.toString());
        EmbeddingFidelity fid = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
        EmbeddingFidelity none = EmbeddingFidelity.measure(r.prepared(), r.uncompensated(), eval);
        System.out.printf("MiniLM cwac (default) %s; none %s; quantize %.1f s; ORT ops %s%n", fid, none, seconds, ops);
        assertTrue(fid.mean() >= 0.985 && fid.min() >= 0.95, "cwac " + fid);
        assertTrue(fid.mean() >= none.mean() - 0.001, "cwac " + fid + " vs none " + none);
    }
}
