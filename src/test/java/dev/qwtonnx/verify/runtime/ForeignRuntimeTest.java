package dev.qwtonnx.verify.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The parts of a foreign run that need no foreign runtime: the files both sides exchange, and availability. */
class ForeignRuntimeTest {
    @Test
    void samplesWrittenForARuntimeReadBackAsTheyWere(@TempDir Path dir) throws Exception {
        Model m = ModelIO.load(Path.of("testdata/example/cnn.onnx"));
        CalibrationSource src = CalibrationSources.limit(
                CalibrationSources.open(Path.of("testdata/example/calib"), InputSpecs.of(m.graph())), 3, null);
        assertEquals(3, RuntimeCheck.writeSamples(src, List.of("x"), dir));
        CalibrationSource back = CalibrationSources.open(dir, InputSpecs.of(m.graph()));
        List<Sample> a = new ArrayList<>();
        src.forEach(a::add);
        int k = 0;
        for (Sample s : back) {
            assertArrayEquals(a.get(k).inputs().get("x").toFloats(), s.inputs().get("x").toFloats());
            assertArrayEquals(a.get(k++).inputs().get("x").shape(), s.inputs().get("x").shape());
        }
        assertEquals(3, k);
    }

    @Test
    void aRunResultReadsKernelsLatenciesAndTheReasonKernelsAreMissing(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve(RunResult.FILE), String.join("\n", "engine\tx 1.0", "output\t0\tlogits",
                "output\t1\tb", "kernel\tQLinearConv\t3", "kernel\tQGemm\t1",
                RunResult.latencyLine("s0", 1.5), RunResult.latencyLine("s1", 2.5), ""));
        RunResult r = RunResult.read(dir);
        assertEquals(List.of("logits", "b"), r.outputs());
        assertEquals(3, r.kernels().get("QLinearConv"));
        assertEquals(List.of("s0", "s1"), r.sampleIds());
        assertArrayEquals(new double[] {1.5, 2.5}, r.latencyMs());
        assertEquals(2.0, RuntimeCheck.latency(r.latencyMs()).medianMs(), 1e-9);

        Files.writeString(dir.resolve(RunResult.FILE), "engine\ty\nkernels-unavailable\tno profile\n");
        RunResult none = RunResult.read(dir);
        assertNull(none.kernels());
        assertEquals("no profile", none.kernelsWhy());
    }

    @Test
    void wasmWithoutOnnxruntimeWebSaysWhereItLookedAndRefusesToRun(@TempDir Path dir) {
        String before = System.getProperty("qwt.ort.web");
        System.setProperty("qwt.ort.web", dir.toString());
        try {
            ForeignRuntime wasm = ForeignRuntime.of(Platform.WASM);
            ForeignRuntime.Availability a = wasm.availability();
            assertFalse(a.available());
            assertTrue(a.why().contains("node") || a.why().contains(dir.toString()), a.why());
            QwtException e = assertThrows(QwtException.class,
                    () -> wasm.run(dir, dir.resolve("out"), List.of(dir.resolve("m.onnx")), java.time.Duration.ofSeconds(5)));
            assertTrue(e.getMessage().contains("not available"), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("qwt.ort.web");
            } else {
                System.setProperty("qwt.ort.web", before);
            }
        }
    }
}
