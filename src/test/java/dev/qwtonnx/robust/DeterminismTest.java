package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.SystemProperties;
import dev.qwtonnx.testutil.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same model, calibration data and options give byte-identical output files, whatever number
 * of intra-op threads ONNX Runtime uses (1, 2, and more threads than this 2-core machine has).
 */
class DeterminismTest {
    @TempDir
    Path tmp;

    private byte[] quantize(Path model, Path calib, String threads, String name, String... extra) throws IOException {
        Path out = tmp.resolve(name);
        List<String> args = new ArrayList<>(List.of(model.toString(), out.toString(), "--calib", calib.toString(),
                "--quiet"));
        args.addAll(List.of(extra));
        SystemProperties.with("qwt.ort.threads", threads, () -> {
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
        });
        return Files.readAllBytes(out);
    }

    private void assertSameBytesAcrossThreadCounts(Path model, Path calib, String... extra) throws IOException {
        byte[] first = quantize(model, calib, "1", "t1.onnx", extra);
        assertArrayEquals(first, quantize(model, calib, "1", "t1-again.onnx", extra), "two runs with 1 thread");
        assertArrayEquals(first, quantize(model, calib, "2", "t2.onnx", extra), "1 thread vs 2");
        assertArrayEquals(first, quantize(model, calib, "3", "t3.onnx", extra), "1 thread vs 3");
    }

    @Test
    void convModelIsTheSameWithAnyThreadCount() throws IOException {
        assertSameBytesAcrossThreadCounts(ExampleData.DIR.resolve("cnn.onnx"), ExampleData.DIR.resolve("calib"));
    }

    /** MatMul layers with a dynamic sequence length, re-quantized outputs and the sequential schedule. */
    @Test
    void matMulModelIsTheSameWithAnyThreadCount() throws IOException {
        Path model = tmp.resolve("mlp.onnx");
        ModelIO.save(TestModels.mlp(3), model, null);
        Path calib = Files.createDirectories(tmp.resolve("calib"));
        int i = 0;
        for (Sample s : TestModels.gaussian("x", 5, 12, new long[] {1, 7, 32}, new long[] {1, 19, 32})) {
            Path set = Files.createDirectories(calib.resolve(String.format("test_data_set_%02d", i++)));
            Files.write(set.resolve("input_0.pb"), s.inputs().get("x").toProto("x").toByteArray());
        }
        assertSameBytesAcrossThreadCounts(model, calib, "--output-q", "matmul");
    }

    /**
     * The options are written into the output's provenance as text; sets in them list their
     * elements in a fixed order, not in Set.copyOf's, which changes from one JVM to the next (the
     * runs above share one JVM and cannot see that).
     */
    @Test
    void optionSetsPrintInAFixedOrder() {
        dev.qwtonnx.quant.QuantOptions o = dev.qwtonnx.quant.QuantOptions.defaults()
                .withKeepFloat(java.util.Set.of("zeta", "alpha", "mid", "beta"))
                .withOutputQuantized(java.util.Set.of(dev.qwtonnx.quant.LayerKind.MATMUL, dev.qwtonnx.quant.LayerKind.CONV,
                        dev.qwtonnx.quant.LayerKind.GEMM));
        String text = o.toString();
        org.junit.jupiter.api.Assertions.assertTrue(text.contains("keepFloat=[alpha, beta, mid, zeta]"), text);
        // Enum declaration order, whatever the order given.
        org.junit.jupiter.api.Assertions.assertTrue(text.contains("outputQuantized=" + java.util.EnumSet.of(
                dev.qwtonnx.quant.LayerKind.GEMM, dev.qwtonnx.quant.LayerKind.MATMUL, dev.qwtonnx.quant.LayerKind.CONV)),
                text);
        org.junit.jupiter.api.Assertions.assertTrue(text.contains("perChannel=[Conv, Gemm, MatMul]"), text);
    }

    /**
     * Over the memory budget, compensation computes the float activations again instead of keeping
     * them: the output graph is the same, byte for byte, with no budget at all (the provenance differs:
     * it records the option).
     */
    @Test
    void aMemoryBudgetOfNothingChangesNoByteOfTheGraph() throws IOException {
        Path model = ExampleData.DIR.resolve("cnn.onnx");
        Path calib = ExampleData.DIR.resolve("calib");
        quantize(model, calib, "2", "default.onnx");
        quantize(model, calib, "2", "none-kept.onnx", "--memory", "0");
        assertArrayEquals(dev.qwtonnx.model.ModelIO.load(tmp.resolve("default.onnx")).graph().toByteArray(),
                dev.qwtonnx.model.ModelIO.load(tmp.resolve("none-kept.onnx")).graph().toByteArray());
    }

    @Test
    void theDefaultBudgetIsSizedFromTheModel() {
        dev.qwtonnx.cwac.CwacOptions o = dev.qwtonnx.cwac.CwacOptions.defaults();
        dev.qwtonnx.model.Model small = dev.qwtonnx.testutil.TestModels.mlp(3);
        assertEquals(256L << 20, o.keepBytes(small), "at least 256 MB");
        assertEquals(5L << 20, o.withMemoryMb(5).keepBytes(small));
        assertEquals(0, o.withMemoryMb(0).keepBytes(small));
    }
}
