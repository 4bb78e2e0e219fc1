package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.Npz;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --calibrate auto}, the default: min/max ranges, and where the held-out fidelity is poor the run made
 * again with percentile ranges and the better kept; a model that reads well is left as min/max makes it.
 */
class AutoRangesCliTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    @TempDir
    static Path tmp;
    static Path rare;
    static Path plain;
    static Path calib;

    /**
     * x[1,64,32] → MatMul(32→64) + bias → Relu → MatMul(64→16) → y. Hidden unit 0 is 1000·(x[.,0] − 3) where
     * that is positive: a value in the hundreds on about 1 row in 700, which min/max must cover (a step of about
     * 4 for the other units, of about 0.5), and which reaches y through a weight of 10^-4. With {@code rare}
     * false, unit 0 is an ordinary one.
     */
    static Model model(boolean rare) {
        ModelBuilder b = new ModelBuilder(5, 13).input("x", F, 1, 64, 32).output("y", F, 1, 64, 16);
        Random r = new Random(5);
        float[] w1 = new float[32 * 64];
        float[] b1 = new float[64];
        float[] w2 = new float[64 * 16];
        for (int i = 0; i < w1.length; i++) {
            w1[i] = (float) (0.2 * r.nextGaussian());
        }
        for (int i = 0; i < w2.length; i++) {
            w2[i] = (float) (0.2 * r.nextGaussian());
        }
        if (rare) {
            for (int i = 0; i < 32; i++) {
                w1[i * 64] = i == 0 ? 1000 : 0;
            }
            b1[0] = -3000;
            for (int o = 0; o < 16; o++) {
                w2[o] = 1e-4f;
            }
        }
        String m1 = b.node("MatMul", List.of("x", b.init("w1", new long[] {32, 64}, w1)), "m1");
        String a1 = b.node("Add", List.of(m1, b.init("b1", new long[] {64}, b1)), "a1");
        String h = b.node("Relu", List.of(a1), "h");
        b.node("MatMul", List.of(h, b.init("w2", new long[] {64, 16}, w2)), "y");
        return b.build();
    }

    @BeforeAll
    static void files() throws IOException {
        rare = tmp.resolve("rare.onnx");
        plain = tmp.resolve("plain.onnx");
        ModelIO.save(model(true), rare, null);
        ModelIO.save(model(false), plain, null);
        calib = Files.createDirectory(tmp.resolve("calib"));
        Random r = new Random(9);
        for (int i = 0; i < 40; i++) {
            float[] v = new float[64 * 32];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) r.nextGaussian();
            }
            Npz.write(calib.resolve(String.format("s%02d.npz", i)), Map.of("x", HostTensor.ofFloats(new long[] {1, 64, 32}, v)));
        }
    }

    private static CliTest.Run quantize(Path model, Path out, String... more) {
        String[] args = new String[6 + more.length];
        System.arraycopy(new String[] {model.toString(), out.toString(), "--calib", calib.toString(), CliTest.INT8_ANYWAY,
                "--no-report"}, 0, args, 0, 6);
        System.arraycopy(more, 0, args, 6, more.length);
        CliTest.Run r = CliTest.cli(args);
        assertEquals(0, r.code(), r.err());
        return r;
    }

    @Test
    void aPoorRunIsMadeAgainWithPercentileRangesAndTheBetterKept() throws IOException {
        CliTest.Run auto = quantize(rare, tmp.resolve("auto.onnx"));
        Matcher m = Pattern.compile("activation ranges: percentile \\(held-out SQNR (-?[\\d.]+) dB with min/max, "
                + "(-?[\\d.]+) dB with percentile 99\\.99\\)").matcher(auto.out());
        assertTrue(m.find(), auto.out());
        assertTrue(Double.parseDouble(m.group(1)) < 15, "min/max is poor here: " + m.group(1));
        assertTrue(Double.parseDouble(m.group(2)) > Double.parseDouble(m.group(1)) + 10, auto.out());
        assertTrue(auto.err().lines().noneMatch(l -> l.startsWith("warning:")), "percentile reads well: " + auto.err());
        quantize(rare, tmp.resolve("percentile.onnx"), "--calibrate", "percentile");
        quantize(rare, tmp.resolve("quiet.onnx"), "--quiet");
        CliTest.Run minMax = quantize(rare, tmp.resolve("minmax.onnx"), "--calibrate", "minmax");
        byte[] kept = Files.readAllBytes(tmp.resolve("auto.onnx"));
        assertArrayEquals(Files.readAllBytes(tmp.resolve("percentile.onnx")), kept, "the percentile run's model");
        assertArrayEquals(Files.readAllBytes(tmp.resolve("quiet.onnx")), kept, "--quiet decides the same");
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(tmp.resolve("minmax.onnx")), kept));
        assertTrue(minMax.out().lines().noneMatch(l -> l.startsWith("activation ranges:")), minMax.out());
        assertTrue(minMax.err().lines().anyMatch(l -> l.startsWith("warning: poor fidelity")), minMax.err());
    }

    /**
     * The run made again reuses the first run's prepared model and its float outputs on the held-out samples: its
     * fidelity pass runs the quantized model alone, and reads what a run with percentile ranges from the start reads.
     * Without a report, the first run's float outputs are its calibration session's (run after its pass): neither
     * fidelity pass makes a float session, and the second calibration pass does not run the held-out samples.
     */
    @Test
    void theRunMadeAgainReusesTheFloatModelsHeldOutOutputs() {
        CliTest.Run auto = quantize(rare, tmp.resolve("reuse.onnx"), "--verbose");
        String log = auto.out() + auto.err();
        List<String> fidelity = log.lines().map(String::trim).filter(l -> l.startsWith("stage fidelity:")).toList();
        assertEquals(2, fidelity.size(), log);
        assertTrue(fidelity.get(0).contains("(1 ORT session, 8 runs)"), fidelity.get(0));
        assertTrue(fidelity.get(1).contains("(1 ORT session, 8 runs)"), "the float model is not run again: " + fidelity.get(1));
        List<Integer> calibrationRuns = log.lines().map(String::trim).filter(l -> l.startsWith("stage calibrate:"))
                .map(l -> Integer.parseInt(l.replaceAll(".*, (\\d+) runs?\\)$", "$1"))).toList();
        assertEquals(2, calibrationRuns.size(), log);
        assertEquals(calibrationRuns.get(1) + 8, calibrationRuns.get(0), "the first pass ran the 8 held-out samples too: " + log);
        assertEquals(1, log.lines().filter(l -> l.trim().startsWith("stage prepare:")).count(), "prepared once");
        Matcher m = Pattern.compile("(-?[\\d.]+) dB with percentile 99\\.99").matcher(auto.out());
        assertTrue(m.find(), auto.out());
        CliTest.Run percentile = quantize(rare, tmp.resolve("percentile-again.onnx"), "--calibrate", "percentile");
        assertTrue(percentile.out().contains("SQNR mean " + m.group(1) + " dB"), "the same figure from the start: "
                + m.group(1) + "\n" + percentile.out());
    }

    /**
     * The run made again takes the first run's layer plan and the shapes of its float session's outputs: int8-cost
     * does not run again, and where calibration narrows the float session, the run made again makes the narrowed
     * session alone instead of the wide one first. The written model is the one a run that never narrows writes.
     */
    @Test
    void theRunMadeAgainMakesOneFloatSessionAndDoesNotEstimateCostsAgain() throws IOException {
        quantize(rare, tmp.resolve("once-wide.onnx"));
        byte[] wide = Files.readAllBytes(tmp.resolve("once-wide.onnx"));
        CliTest.Run narrow;
        System.setProperty("qwt.narrowFloatSessionFrom", "1");
        try {
            narrow = quantize(rare, tmp.resolve("once-narrow.onnx"), "--verbose");
        } finally {
            System.clearProperty("qwt.narrowFloatSessionFrom");
        }
        List<String> log = (narrow.out() + narrow.err()).lines().map(String::trim).toList();
        assertTrue(log.stream().anyMatch(l -> l.startsWith("activation ranges: percentile")), log.toString());
        assertEquals(1, log.stream().filter(l -> l.startsWith("stage int8-cost:")).count(), log.toString());
        assertEquals(1, log.stream().filter(l -> l.startsWith("stage plan-layers:")).count(), log.toString());
        // The first run narrows the session int8-cost made; the run made again makes only the narrowed one.
        assertEquals(List.of(true, false), log.stream().filter(l -> l.startsWith("float session made"))
                .map(l -> l.startsWith("float session made again with")).toList(), log.toString());
        List<String> calibrate = log.stream().filter(l -> l.startsWith("stage calibrate:")).toList();
        assertEquals(2, calibrate.size(), log.toString());
        assertTrue(calibrate.get(1).contains("(1 ORT session,"), calibrate.get(1));
        assertArrayEquals(wide, Files.readAllBytes(tmp.resolve("once-narrow.onnx")));
    }

    @Test
    void aRunThatReadsWellKeepsMinMaxRangesWithoutMakingItAgain() throws IOException {
        CliTest.Run auto = quantize(plain, tmp.resolve("plain-auto.onnx"));
        quantize(plain, tmp.resolve("plain-minmax.onnx"), "--calibrate", "minmax");
        assertTrue(auto.out().lines().noneMatch(l -> l.startsWith("activation ranges:")), auto.out());
        assertArrayEquals(Files.readAllBytes(tmp.resolve("plain-minmax.onnx")), Files.readAllBytes(tmp.resolve("plain-auto.onnx")));
    }
}
