package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Coverage-guided fuzzing of what reads untrusted model bytes: {@link ModelIO#load} (protobuf
 * parsing, external data) and {@link ModelChecker}. Whatever the bytes, the outcome is a model that
 * passes the checker or a one-line {@link QwtException}; any other exception, an OutOfMemoryError
 * or a hang is a finding.
 *
 * <p>By default (regression mode) JUnit replays the inputs in
 * {@code src/test/resources/dev/qwtonnx/robust/ModelLoaderFuzzTestInputs/loadAndCheck}; with
 * {@code JAZZER_FUZZ=1} it fuzzes for {@code maxDuration} (see docs/testing.md).
 */
class ModelLoaderFuzzTest {
    private static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("qwt-fuzz");
            DIR.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "10s")
    void loadAndCheck(byte[] bytes) throws IOException {
        Path file = DIR.resolve("model.onnx");
        Files.write(file, bytes);
        try {
            Model m = ModelIO.load(file);
            ModelChecker.checkForRuntime(m);
            assertNotNull(m.graph());
        } catch (QwtException e) {
            assertNotNull(e.getMessage());
            assertFalse(e.getMessage().isBlank(), "blank error message");
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
