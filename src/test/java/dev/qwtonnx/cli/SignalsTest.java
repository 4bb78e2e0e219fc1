package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.testutil.ExampleData;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SignalsTest {
    /**
     * A kill while threads are inside ORT, one making sessions and one running them, ends the process
     * with the signal's exit code and no crash. With the JVM's own handling, ORT's shutdown hook
     * released its environment under them: a SIGSEGV, exit code 134 and an hs_err file in the working
     * directory (microsoft/onnxruntime#31352).
     */
    @Test
    void aKillInsideOrtEndsWithTheSignalsCodeAndNoCrash(@TempDir Path dir) throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path model = ExampleData.DIR.resolve("cnn.onnx").toAbsolutePath();
        for (long delayMs : new long[] {0, 50, 150, 300}) {
            Process p = new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"), BusyInOrt.class.getName(),
                    model.toString()).directory(dir.toFile()).redirectErrorStream(true).start();
            String out;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String first = r.readLine();
                assertEquals("ready", first);
                Thread.sleep(delayMs);
                p.toHandle().destroy(); // SIGTERM, as from kill (Ctrl-C's SIGINT takes the same way); keeps the output readable
                out = first + "\n" + String.join("\n", r.lines().toList()); // to the end of the process's output
                assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            } finally {
                p.destroyForcibly();
            }
            assertEquals(128 + 15, p.exitValue(), "after " + delayMs + " ms:\n" + out);
            assertFalse(out.contains("fatal error"), out);
            try (Stream<Path> left = Files.list(dir)) {
                assertEquals(List.of(), left.toList(), "files left in the working directory");
            }
        }
    }

    /** Handles signals as the command line does, then makes and runs sessions on two threads until killed. */
    static final class BusyInOrt {
        public static void main(String[] args) throws Exception {
            // ORT's libraries from the cache, as the command line loads them: a halted JVM never deletes the copy
            // ORT's loader would otherwise inflate into a temporary directory (28 MB per kill).
            dev.qwtonnx.ort.NativeLibraryCache.install();
            Signals.install();
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            byte[] bytes = Files.readAllBytes(Path.of(args[0]));
            OrtSession session = env.createSession(bytes);
            Thread maker = new Thread(() -> {
                while (true) {
                    try (OrtSession s = env.createSession(bytes)) {
                        // Made and closed, again and again.
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }
            });
            maker.setDaemon(true);
            maker.start();
            var input = session.getInputInfo().entrySet().iterator().next();
            long[] shape = ((ai.onnxruntime.TensorInfo) input.getValue().getInfo()).getShape();
            for (int i = 0; i < shape.length; i++) {
                shape[i] = Math.max(1, shape[i]);
            }
            float[] zeros = new float[(int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
            try (OnnxTensor x = OnnxTensor.createTensor(env, java.nio.FloatBuffer.wrap(zeros), shape)) {
                System.out.println("ready");
                while (true) {
                    session.run(Map.of(input.getKey(), x)).close();
                }
            }
        }
    }
}
