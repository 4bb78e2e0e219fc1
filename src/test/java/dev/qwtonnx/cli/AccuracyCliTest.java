package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.Npz;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.AudioFrontEnd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** quantize's accuracy target, the poor-fidelity warning and --strict, on the small audio front-end. */
class AccuracyCliTest {
    /** The front-end's layers all feed its log and stay float by default; these tests exercise its poor int8 form. */
    private static final String LOG_INPUTS = "--quantize-log-inputs";

    @TempDir
    Path tmp;

    Path model;
    Path calib;

    @BeforeEach
    void files() throws IOException {
        model = tmp.resolve("frontend.onnx");
        ModelIO.save(AudioFrontEnd.model(), model, null);
        calib = Files.createDirectory(tmp.resolve("audio"));
        List<Map<String, HostTensor>> clips = AudioFrontEnd.clips(1, 30);
        for (int i = 0; i < clips.size(); i++) {
            Npz.write(calib.resolve(String.format("clip_%02d.npz", i)), clips.get(i));
        }
    }

    /**
     * `compensate` of a plain int8 front-end: compensation corrects rounding, not the loss of the small powers that
     * the log then magnifies, so the result stays poor, and the command warns as quantize does; the output is
     * written all the same.
     */
    @Test
    void compensateWarnsWhereTheResultIsStillPoor() {
        Path int8 = tmp.resolve("plain.onnx");
        assertEquals(0, CliTest.cli(model.toString(), int8.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY, LOG_INPUTS,
                "--no-report", "--calibrate", "minmax", "--method", "none", "--format", "qdq", "--quiet").code());
        Path out = tmp.resolve("compensated.onnx");
        CliTest.Run r = CliTest.cli("compensate", model.toString(), int8.toString(), out.toString(), "--calib",
                calib.toString());
        assertEquals(0, r.code(), r.err());
        List<String> warnings = r.err().lines().filter(l -> l.startsWith("warning:")).toList();
        assertEquals(1, warnings.size(), r.err() + r.out());
        assertTrue(warnings.get(0).matches("warning: poor fidelity of output 'mel' after compensation: SQNR -?\\d+\\.\\d\\d "
                + "dB, cosine 0\\.\\d{5} \\(below 15 dB or 0\\.98\\); compensation corrects rounding errors, not a "
                + "broken quantization: .*"), warnings.get(0));
        assertTrue(Files.isRegularFile(out));
    }

    /**
     * By default the front-end's STFT Convs and mel MatMul, which all feed its log, stay float: the output is the
     * prepared float model, said in one line with the option that quantizes them, and nothing is poor.
     */
    @Test
    void byDefaultTheLayersThatFeedTheLogStayFloat() {
        Path out = tmp.resolve("float.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY,
                "--no-report");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("every layer feeds a log (3 left in float"), r.out());
        assertTrue(r.out().contains("--quantize-log-inputs quantizes them anyway"), r.out());
        assertFalse(r.err().contains("warning:"), r.err());
        assertEquals(0, dev.qwtonnx.model.ModelIO.load(out).graph().getNodeList().stream()
                .filter(n -> n.getOpType().contains("Quantize")).count());
    }

    @Test
    void poorFidelityIsAWarningNamingTheOutputTheFigureAndTheLayers() {
        Path out = tmp.resolve("q.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY, LOG_INPUTS, "--no-report");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(out));
        List<String> warnings = r.err().lines().filter(l -> l.startsWith("warning:")).toList();
        assertEquals(1, warnings.size(), r.err());
        assertTrue(warnings.get(0).matches("warning: poor fidelity of output 'mel' on 6 held-out samples: SQNR \\d+\\.\\d\\d dB, "
                + "cosine 0\\.\\d{5} \\(below 15 dB or 0\\.98\\); the layers whose quantization alone hurts most: "
                + "\\w+, \\w+ \\(.*"), warnings.get(0));
        // The layers named are the front-end's own: the mel MatMul and one STFT Conv.
        assertTrue(warnings.get(0).contains("matmul_"), warnings.get(0));
        // The default (--calibrate auto) made the run again with percentile ranges: it says which it kept and why,
        // and the warning does not suggest what was tried.
        assertTrue(r.out().lines().anyMatch(l -> l.matches("activation ranges: (percentile|min/max) \\(held-out SQNR "
                + "-?\\d+\\.\\d\\d dB with min/max, -?\\d+\\.\\d\\d dB with percentile 99\\.99\\)")), r.out());
        assertFalse(warnings.get(0).contains("--calibrate"), warnings.get(0));
        CliTest.Run minMax = CliTest.cli(model.toString(), tmp.resolve("m.onnx").toString(), "--calib", calib.toString(),
                CliTest.INT8_ANYWAY, LOG_INPUTS, "--no-report", "--calibrate", "minmax");
        assertTrue(minMax.err().lines().filter(l -> l.startsWith("warning:"))
                .anyMatch(l -> l.endsWith("; --calibrate percentile clips outlier activations)")), minMax.err());
        assertTrue(minMax.out().lines().noneMatch(l -> l.startsWith("activation ranges:")), minMax.out());
    }

    @Test
    void strictMakesAPoorOutputExitThreeAndWritesNothing() throws IOException {
        Path out = tmp.resolve("strict.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY, LOG_INPUTS, "--strict", "--quiet");
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.err().lines().anyMatch(l -> l.startsWith("warning: poor fidelity of output 'mel'")), r.err());
        assertTrue(r.err().contains("--strict: not written: " + out), r.err());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(), s.filter(p -> p.getFileName().toString().startsWith("strict")).toList());
        }
    }

    @Test
    void aTargetReturnsLayersToFloatUntilItHolds() {
        Path out = tmp.resolve("target.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY, LOG_INPUTS, "--min-sqnr", "20",
                "--strict", "--no-report");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.err().contains("warning:"), r.err());
        assertTrue(r.out().contains("accuracy target SQNR of 'mel' >= 20.00 dB: met on 6 held-out samples"), r.out());
        long returned = r.out().lines().filter(l -> l.startsWith("left in float:") && l.contains("accuracy target")).count();
        assertTrue(returned >= 1 && returned <= 2, r.out());
        assertTrue(Files.isRegularFile(out));
    }

    @Test
    void aTargetOutOfReachIsOneLineAndExitZeroWithoutStrict() {
        Path out = tmp.resolve("far.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY, LOG_INPUTS, "--metric", "top1",
                "--min-score", "1.01", "--no-report", "--quiet");
        assertEquals(0, r.code(), r.err());
        List<String> warnings = r.err().lines().filter(l -> l.startsWith("warning:")).toList();
        assertEquals(1, warnings.size(), r.err());
        assertTrue(warnings.get(0).startsWith("warning: accuracy target not met on 6 held-out samples: top-1 agreement "
                + "of 'mel' "), warnings.get(0));
        assertTrue(warnings.get(0).contains("< 1.0100 (short by "), warnings.get(0));
    }

    @Test
    void badTargetOptionsAreUserErrors() {
        Path out = tmp.resolve("bad.onnx");
        CliTest.Run r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), "--metric", "iou:x",
                "--min-score", "0.9");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--metric iou:THRESHOLD needs a number"), r.err());
        r = CliTest.cli(model.toString(), out.toString(), "--calib", calib.toString(), "--metric", "top1");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--metric and --min-score go together"), r.err());
        assertFalse(Files.exists(out));
    }
}
