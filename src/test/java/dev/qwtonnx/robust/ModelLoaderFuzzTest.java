package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.ort.OrtSessions;
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
 * <p>Every model the checker accepts is then handed to ONNX Runtime, as the tool does next: the
 * checker exists so that what it accepts never crashes ORT. ORT may still refuse such a model with an
 * {@link OrtException} (an operator it lacks, a type mismatch the checker does not look for); a JVM
 * crash, or any other exception, is a finding.
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
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                    OrtSessions.Handle session = OrtSessions.create(m, opts)) {
                assertNotNull(session.session().getInputNames());
            } catch (OrtException e) {
                // ORT's refusal of a model the checker let through is an answer, not a crash.
                assertNotNull(e.getMessage());
            }
        } catch (QwtException e) {
            assertNotNull(e.getMessage());
            assertFalse(e.getMessage().isBlank(), "blank error message");
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
