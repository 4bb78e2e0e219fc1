package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.testutil.ExampleData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every file of the bad-input corpus (testdata/bad) through the command line: exit code 2, one line
 * naming the file, node, tensor or input at fault, no stack trace, no output and no temporary file.
 */
class BadInputCliTest {
    static final String CALIB = ExampleData.DIR.resolve("calib").toString();

    @TempDir
    Path tmp;

    private Path outDir() throws IOException {
        return Files.createDirectories(tmp.resolve("out"));
    }

    /** Quantizes testdata/bad/{@code model} with the example's calibration data, expecting a user error. */
    private CliRun badModel(String model, String... mentions) throws IOException {
        Path in = BadInputs.DIR.resolve(model);
        assertTrue(Files.isRegularFile(in), in + " is missing from the corpus");
        Path out = outDir();
        return CliRun.of(in.toString(), out.resolve("o.onnx").toString(), "--calib", CALIB).assertUserError(out,
                mentions);
    }

    @Test
    void emptyFile() throws IOException {
        badModel("empty.onnx", "not an ONNX model", "empty.onnx");
    }

    @Test
    void randomBytes() throws IOException {
        badModel("random.onnx", "not an ONNX model", "random.onnx");
    }

    @Test
    void truncatedModel() throws IOException {
        badModel("truncated.onnx", "not an ONNX model", "truncated.onnx");
    }

    @Test
    void protobufOfTheWrongMessage() throws IOException {
        badModel("wrong-message.onnx", "not an ONNX model", "wrong-message.onnx");
    }

    @Test
    void graphWithACycle() throws IOException {
        badModel("cycle.onnx", "cycle.onnx", "has a cycle", "'conv_0'", "'relu_1'");
    }

    @Test
    void inputThatNothingProduces() throws IOException {
        badModel("undefined-input.onnx", "undefined-input.onnx", "relu_3", "'ghost'");
    }

    @Test
    void duplicateOutputNames() throws IOException {
        badModel("duplicate-output.onnx", "duplicate-output.onnx", "'r1'", "defined more than once", "relu_3");
    }

    @Test
    void unknownOpsetDomain() throws IOException {
        badModel("unknown-domain.onnx", "unknown-domain.onnx", "relu_1", "'com.acme'");
    }

    @Test
    void operatorOrtCannotRun() throws IOException {
        badModel("unknown-operator.onnx", "Swish9000");
    }

    @Test
    void rawDataLengthNotMatchingDims() throws IOException {
        badModel("raw-data-mismatch.onnx", "raw-data-mismatch.onnx", "'w2'", "raw data");
    }

    @Test
    void hugeDeclaredDimsAreNotAllocated() throws IOException {
        // 2^48 floats declared over 1 KB of data: refused from the sizes, never allocated.
        badModel("huge-dims.onnx", "huge-dims.onnx", "'w3'");
    }

    @Test
    void externalDataEscapingTheFolderIsRefused() throws IOException {
        badModel("external-relative-escape.onnx", "external-relative-escape.onnx", "'w1'", "outside the model's folder", "../../etc/passwd");
    }

    @Test
    void externalDataAtAnAbsolutePathIsRefused() throws IOException {
        badModel("external-absolute.onnx", "external-absolute.onnx", "'w1'", "outside the model's folder", "/etc/passwd");
    }

    /** The escaping path names a FIFO with no writer: opening it would block, so a refusal in time proves it was never read. */
    @Test
    void externalDataOutsideTheFolderIsNeverOpened() throws Exception {
        Path fifo = tmp.resolve("secret");
        Assumptions.assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0,
                "mkfifo is not available");
        Path models = Files.createDirectories(tmp.resolve("models"));
        Path model = models.resolve("m.onnx");
        Files.write(model, BadInputs.base().toBuilder().setGraph(BadInputs.external(
                BadInputs.base().getGraph().toBuilder(), "w1", "../secret")).build().toByteArray());
        Path out = outDir();
        CliRun r = assertTimeoutPreemptively(Duration.ofSeconds(30),
                () -> CliRun.of(model.toString(), out.resolve("o.onnx").toString(), "--calib", CALIB));
        r.assertUserError(out, "'w1'", "outside the model's folder", "../secret");
    }

    @Test
    void externalDataThroughASymlinkOutOfTheFolderIsRefused() throws IOException {
        Path models = Files.createDirectories(tmp.resolve("models"));
        Path secret = Files.writeString(tmp.resolve("secret.bin"), "x".repeat(8 * 3 * 3 * 3 * 4));
        Files.createSymbolicLink(models.resolve("weights.bin"), secret);
        Path model = models.resolve("m.onnx");
        Files.write(model, BadInputs.base().toBuilder().setGraph(BadInputs.external(
                BadInputs.base().getGraph().toBuilder(), "w1", "weights.bin")).build().toByteArray());
        Path out = outDir();
        CliRun.of(model.toString(), out.resolve("o.onnx").toString(), "--calib", CALIB).assertUserError(out,
                "'w1'", "symbolic link");
    }

    @Test
    void alreadyQuantizedModelIsRefused() throws IOException {
        badModel("already-quantized.onnx", "already quantized", "'x_q'");
    }

    @Test
    void nothingToQuantize() throws IOException {
        badModel("no-layers.onnx", "no Conv, MatMul or Gemm");
    }

    private CliRun badCalib(String folder, String... mentions) throws IOException {
        Path dir = BadInputs.DIR.resolve(folder);
        assertTrue(Files.isDirectory(dir), dir + " is missing from the corpus");
        Path out = outDir();
        return CliRun.of(ExampleData.DIR.resolve("cnn.onnx").toString(), out.resolve("o.onnx").toString(),
                "--calib", dir.toString()).assertUserError(out, mentions);
    }

    @Test
    void calibrationOfTheWrongDtype() throws IOException {
        badCalib("calib-wrong-dtype", "input_0.pb", "INT64", "FLOAT");
    }

    @Test
    void calibrationOfTheWrongRank() throws IOException {
        badCalib("calib-wrong-rank", "input_0.pb", "rank 3");
    }

    @Test
    void calibrationWithNaN() throws IOException {
        badCalib("calib-nan", "test_data_set_1", "NaN");
    }

    @Test
    void calibrationWithInfinity() throws IOException {
        badCalib("calib-inf", "test_data_set_0", "infinity");
    }

    @Test
    void calibrationWithZeroSamples() throws IOException {
        badCalib("calib-zero-samples", "no calibration samples", "calib-zero-samples");
    }

    /** One sample is enough to quantize, but then nothing is held out: the summary says so. */
    @Test
    void calibrationWithOneSample() throws IOException {
        Path out = outDir().resolve("o.onnx");
        CliRun r = CliRun.of(ExampleData.DIR.resolve("cnn.onnx").toString(), out.toString(), "--calib",
                BadInputs.DIR.resolve("calib-one-sample").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("fidelity on 1 calibration (no hold-out) samples"), r.out());
        assertTrue(Files.isRegularFile(out));
        // The model and, by default, its two report files; nothing else (no temporary file).
        assertEquals(List.of(out, out.resolveSibling("o.report.html"), out.resolveSibling("o.report.json")),
                CliRun.files(out.getParent()));
    }

    @Test
    void outputThatIsTheInputUnderAnotherNameIsRefused() throws IOException {
        Path model = Files.copy(ExampleData.DIR.resolve("cnn.onnx"), tmp.resolve("model.onnx"));
        Path link = Files.createSymbolicLink(tmp.resolve("link.onnx"), model);
        byte[] before = Files.readAllBytes(model);
        for (Path same : List.of(model, link, tmp.resolve("sub/../model.onnx"))) {
            CliRun.of(model.toString(), same.toString(), "--calib", CALIB).assertUserError(null,
                    "refusing to overwrite");
        }
        assertArrayEquals(before, Files.readAllBytes(model));
        assertEquals(List.of(link, model), CliRun.files(tmp));
    }

    /** compensate and verify check both models as quantize does, naming the file at fault; no ORT session sees it. */
    @Test
    void compensateAndVerifyNameTheBadModel() throws IOException {
        String good = ExampleData.DIR.resolve("cnn.onnx").toString();
        for (String bad : List.of("unknown-domain.onnx", "cycle.onnx", "truncated.onnx")) {
            String badPath = BadInputs.DIR.resolve(bad).toString();
            for (String[] models : List.of(new String[] {badPath, good}, new String[] {good, badPath})) {
                Path out = outDir();
                CliRun.of("compensate", models[0], models[1], out.resolve("o.onnx").toString(), "--calib", CALIB)
                        .assertUserError(out, badPath);
                CliRun.of("verify", models[0], models[1], "--data", CALIB, "--runs", "0").assertUserError(out, badPath);
            }
        }
    }

    @Test
    void verboseAddsTheStackTrace() throws IOException {
        Path out = outDir();
        CliRun r = CliRun.of(BadInputs.DIR.resolve("cycle.onnx").toString(), out.resolve("o.onnx").toString(),
                "--calib", CALIB, "--verbose");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().startsWith("qwt-onnx: error: "), r.err());
        assertTrue(r.err().contains("\tat dev.qwtonnx.model.ModelChecker"), r.err());
        assertEquals(List.of(), CliRun.files(out));
    }
}
