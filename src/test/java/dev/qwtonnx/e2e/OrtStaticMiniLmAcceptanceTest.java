package dev.qwtonnx.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.run.CompensateRun;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.MiniLm;
import dev.qwtonnx.verify.Fidelity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ORT's static MiniLM with every operator quantized (tools/ort_quantize.py --all-ops, not committed):
 * compensated with the defaults, fitted and judged on sentences apart from those it is measured on,
 * its sentence-embedding cosine on those unseen sentences is not below the input's beyond their noise.
 */
@Tag("model")
class OrtStaticMiniLmAcceptanceTest {
    @Test
    void neverWorseOnUnseenSentences(@TempDir Path dir) throws Exception {
        Path file = OrtQuantizedCompensateTest.DIR.resolve("minilm-ort-static.onnx");
        assumeTrue(Files.exists(file), file + " not found: run python3 tools/ort_quantize.py --all-ops");
        assumeTrue(Fortunes.available(), "Debian's fortunes package is not installed (.ci/run installs it)");
        Model theirs = ModelIO.load(file);
        List<String> sentences = Fortunes.load(2027);
        Model floatModel = MiniLm.floatModel(dir);
        CompensateRun.Result r = QwtOnnx.compensate(floatModel, theirs,
                CalibrationSources.ofList(MiniLm.samples(sentences.subList(0, 32), 128)),
                CalibrationSources.ofList(MiniLm.samples(sentences.subList(32, 48), 128)),
                CwacOptions.compensateDefaults(), Progress.NONE, null);
        List<Sample> unseen = MiniLm.samples(sentences.subList(48, 128), 128);
        double[] gain = new double[unseen.size()];
        double before = 0;
        try (OrtRunner f = new OrtRunner(floatModel, List.of()); OrtRunner q = new OrtRunner(theirs, List.of());
                OrtRunner c = new OrtRunner(r.model(), List.of())) {
            for (int i = 0; i < unseen.size(); i++) {
                float[] want = pooled(f, unseen.get(i));
                double was = Fidelity.cosine(want, pooled(q, unseen.get(i)));
                gain[i] = Fidelity.cosine(want, pooled(c, unseen.get(i))) - was;
                before += was / unseen.size();
            }
        }
        double mean = java.util.Arrays.stream(gain).average().orElseThrow();
        double ss = java.util.Arrays.stream(gain).map(g -> (g - mean) * (g - mean)).sum();
        double standardError = Math.sqrt(ss / (gain.length - 1) / gain.length);
        System.out.printf("ORT static MiniLM, unseen sentences: cosine %.4f -> %.4f (paired standard error %.4f)%n",
                before, before + mean, standardError);
        assertTrue(mean >= -2 * standardError, "cosine " + before + " -> " + (before + mean) + " (standard error "
                + standardError + ")");
    }

    private static float[] pooled(OrtRunner runner, Sample s) {
        FloatTensor t = runner.run(s, List.of("last_hidden_state")).get("last_hidden_state");
        return MiniLm.meanPool(t.data(), t.shape());
    }
}
