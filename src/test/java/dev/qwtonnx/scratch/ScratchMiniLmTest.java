package dev.qwtonnx.scratch;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.EmbeddingFidelity;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.MiniLm;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class ScratchMiniLmTest {
    @Test
    void run() throws Exception {
        List<String> sentences = Fortunes.load(2026);
        List<Sample> calib = MiniLm.samples(sentences.subList(0, 32), 128);
        List<Sample> eval = MiniLm.samples(sentences.subList(32, 132), 128);
        Model f = ModelIO.load(Path.of("/tmp/minilm13.onnx"));
        for (String cfg : System.getProperty("cfgs", "none,cwac-global-seq").split(",")) {
            String[] p = cfg.split("-");
            CwacOptions c = p[0].equals("none") ? CwacOptions.defaults().withMethod(CwacOptions.Method.NONE)
                    : p[0].equals("bias") ? CwacOptions.defaults().withMethod(CwacOptions.Method.BIAS)
                    : new CwacOptions(CwacOptions.Method.CWAC, CwacOptions.Target.valueOf(p[1].toUpperCase()),
                            p[2].equals("seq") ? CwacOptions.Schedule.SEQUENTIAL : CwacOptions.Schedule.PARALLEL, 0.01, 2.0);
            long t0 = System.nanoTime();
            QwtOnnx.Result r = QwtOnnx.quantize(f, CalibrationSources.ofList(calib), QwtOnnx.Options.defaults().withCwac(c), Progress.NONE, null);
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("SCRATCH %s: %s  (%.1f s, sse %.4g -> %.4g)%n", cfg, EmbeddingFidelity.measure(r.prepared(), r.model(), eval), s,
                    r.compensation().sseBefore(), r.compensation().sseAfter());
        }
    }
}
