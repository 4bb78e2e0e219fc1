package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.OrtTestSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `--format qoperator` and the `compensate` sub-command on the bundled example. */
class CompensateCliTest {
    @TempDir
    Path tmp;

    static final String MODEL = CliTest.MODEL;
    static final String CALIB = CliTest.CALIB;

    @Test
    void quantizesToQOperator() {
        Path out = tmp.resolve("cnn-qop.onnx");
        CliTest.Run r = CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--format", "qoperator");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("ORT integer kernels: 4 for 4 quantized layers"), r.out());
        Model m = ModelIO.load(out);
        assertEquals(3, OrtTestSupport.count(m, "QLinearConv"), OrtTestSupport.opTypes(m).toString());
        assertEquals(1, OrtTestSupport.count(m, "QGemm"));
        assertEquals(0, OrtTestSupport.count(m, "Conv"));
    }

    @Test
    void compensateChecksTheTargetsRulesAndAddsNoViolation() {
        Path int8 = tmp.resolve("tensorrt-int8.onnx");
        assertEquals(0, CliTest.cli(MODEL, int8.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--method", "none", "--target", "tensorrt",
                "--quiet").code());
        Path out = tmp.resolve("tensorrt-compensated.onnx");
        CliTest.Run r = CliTest.cli("compensate", MODEL, int8.toString(), out.toString(), "--calib", CALIB, "--target",
                "tensorrt", "--accept", "none");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("target tensorrt: checked against the rules, not run on the device; rule violations "
                + "0 before, 0 after"), r.out());
        // A float-bias target: the shifts went into the float biases, the nodes are the input's.
        assertTrue(r.out().contains("nodes identical to the input model: yes"), r.out());
        assertFalse(r.out().contains("compensated 0 of"), r.out());
        Path xnn = tmp.resolve("xnnpack-compensated.onnx");
        CliTest.Run x = CliTest.cli("compensate", MODEL, int8.toString(), xnn.toString(), "--calib", CALIB, "--target",
                "xnnpack");
        assertTrue(x.out().matches("(?s).*target xnnpack: .*rule violations (\\d+) before, \\1 after.*"), x.out());
    }

    @Test
    void saysWhereCompensationMeasuredTheGridInsteadOfThisCpusSaturatingKernels() {
        // Full-range weights (cpu-vnni): their kernels saturate on x86 without VNNI, where the note must say so.
        Path int8 = tmp.resolve("vnni-int8.onnx");
        assertEquals(0, CliTest.cli(MODEL, int8.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--method", "none",
                "--target", "cpu-vnni", "--format", "qdq", "--quiet").code());
        CliTest.Run r = CliTest.cli("compensate", MODEL, int8.toString(), tmp.resolve("vnni-comp.onnx").toString(),
                "--calib", CALIB);
        assertEquals(0, r.code(), r.err());
        boolean grid = dev.qwtonnx.cwac.Grid.measures(dev.qwtonnx.model.ModelIO.load(int8));
        assertEquals(dev.qwtonnx.ort.CpuFeatures.current().lacksInt8DotProduct(), grid);
        assertEquals(grid, r.out().contains("compensation measured the quantization grid"), r.out());
    }

    /** A model that compensates well gets no warning (the poor case: {@code AccuracyCliTest}). */
    @Test
    void noWarningWhereTheCompensatedModelReadsWell() {
        Path int8 = tmp.resolve("qdq-int8.onnx");
        assertEquals(0, CliTest.cli(MODEL, int8.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--method", "none",
                "--format", "qdq", "--quiet").code());
        CliTest.Run r = CliTest.cli("compensate", MODEL, int8.toString(), tmp.resolve("fine.onnx").toString(),
                "--calib", CALIB);
        assertEquals(0, r.code(), r.err());
        assertFalse(r.err().contains("warning:"), r.err());
    }

    @Test
    void unknownFormatIsAUserError() {
        Path out = tmp.resolve("o.onnx");
        CliTest.Run r = CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--format", "qlinear");
        assertEquals(Main.USER_ERROR, r.code(), r.err());
        assertTrue(r.err().contains("--format"), r.err());
        assertFalse(Files.exists(out));
    }

    @Test
    void compensatesAnotherRunsInt8ModelKeepingItsNodes() throws IOException {
        Path int8 = tmp.resolve("plain-int8.onnx");
        assertEquals(0, CliTest.cli(MODEL, int8.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--method", "none", "--quiet").code());
        byte[] int8Bytes = Files.readAllBytes(int8);
        Path out = tmp.resolve("compensated.onnx");
        CliTest.Run r = CliTest.cli("compensate", MODEL, int8.toString(), out.toString(), "--calib", CALIB);
        assertEquals(0, r.code(), r.err());
        // By default each stage is judged on samples apart from those it is fitted on.
        assertTrue(r.out().contains(" acceptance samples the fits did not use: "), r.out());
        assertTrue(r.out().contains(" of 4 quantized layers") && r.out().contains("left as they were: 0"), r.out());
        assertTrue(r.out().contains("nodes identical to the input model: yes; ORT integer kernels: 4 before, 4 after"),
                r.out());
        assertTrue(Arrays.equals(int8Bytes, Files.readAllBytes(int8)), "the INT8 input is never changed");
        assertEquals(ModelIO.load(int8).graph().getNodeList(), ModelIO.load(out).graph().getNodeList());

        Path every = tmp.resolve("every-stage.onnx");
        CliTest.Run all = CliTest.cli("compensate", MODEL, int8.toString(), every.toString(), "--calib", CALIB,
                "--accept", "none");
        assertEquals(0, all.code(), all.err());
        assertTrue(all.out().contains("compensated 4 of 4 quantized layers"), all.out());
        assertFalse(all.out().contains("acceptance"), all.out());
        CliTest.Run bad = CliTest.cli("compensate", MODEL, int8.toString(), every.toString(), "--calib", CALIB,
                "--accept", "always");
        assertEquals(Main.USER_ERROR, bad.code(), bad.err());
        assertTrue(bad.err().contains("--accept"), bad.err());
    }

    @Test
    void compensateRefusesAFloatModelAsTheInt8OneAndOverwritingIt() {
        Path out = tmp.resolve("o.onnx");
        CliTest.Run r = CliTest.cli("compensate", MODEL, MODEL, out.toString(), "--calib", CALIB);
        assertEquals(Main.USER_ERROR, r.code(), r.err());
        assertEquals(1, r.err().strip().split("\n").length, r.err());
        assertTrue(r.err().contains("no quantized layer"), r.err());
        assertFalse(Files.exists(out));
        CliTest.Run same = CliTest.cli("compensate", MODEL, out.toString(), MODEL, "--calib", CALIB);
        assertEquals(Main.USER_ERROR, same.code(), same.err());
        assertTrue(same.err().contains("refusing to overwrite"), same.err());
    }

    /**
     * A model whose weights alone are quantized (what ORT's quantizer writes for an encoder its transformer optimizer
     * fused) is refused as such, not as a model with no layer to pair.
     */
    @Test
    void compensateRefusesAWeightOnlyModelSayingSo() throws IOException {
        OrtTestSupport.ModelBuilder f = new OrtTestSupport.ModelBuilder(1, 13).input("x", 1, 1, 3, 16, 16).outputs("y");
        String flat = f.node("Flatten", java.util.List.of("x"), "flat");
        f.node("MatMul", java.util.List.of(flat, f.randomInit("w", 0.05, 768, 8)), "y");
        OrtTestSupport.ModelBuilder q = new OrtTestSupport.ModelBuilder(1, 13).input("x", 1, 1, 3, 16, 16).outputs("y");
        String qflat = q.node("Flatten", java.util.List.of("x"), "flat");
        q.init(dev.qwtonnx.model.Tensors.int8Tensor("wq", new long[] {768, 8}, new byte[768 * 8]));
        q.init(dev.qwtonnx.model.Tensors.floatScalar("ws", 0.01f));
        String w = q.node("DequantizeLinear", java.util.List.of("wq", "ws"), "w");
        q.node("MatMul", java.util.List.of(qflat, w), "y");
        Path floatPath = tmp.resolve("f.onnx");
        Path int8Path = tmp.resolve("q.onnx");
        ModelIO.save(f.build(), floatPath, null);
        ModelIO.save(q.build(), int8Path, null);
        CliTest.Run r = CliTest.cli("compensate", floatPath.toString(), int8Path.toString(), tmp.resolve("o.onnx").toString(),
                "--calib", CALIB);
        assertEquals(Main.USER_ERROR, r.code(), r.err());
        assertTrue(r.err().contains("quantizes weights only (1 Conv/MatMul/Gemm layers read a DequantizeLinear weight"),
                r.err());
    }
}
