package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.ExampleData;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line as a separate process: killed mid-run, writing to a full disk, writing to a
 * read-only folder. Full and read-only file systems are small tmpfs mounts in a private mount
 * namespace ({@code unshare}); where that is not allowed the tests show as skipped.
 */
class ProcessTest {
    static final String MODEL = ExampleData.DIR.resolve("cnn.onnx").toAbsolutePath().toString();
    static final String CALIB = ExampleData.DIR.resolve("calib").toAbsolutePath().toString();

    @TempDir
    Path tmp;

    private static List<String> java(String mainClass, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private static List<String> cli(String... args) {
        return java("dev.qwtonnx.cli.Main", args);
    }

    record Result(int code, String out) {
    }

    private static Result run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "process did not finish");
        return new Result(p.exitValue(), out);
    }

    /** A kill while the output's temporary file is being written: the shutdown hook deletes it. */
    @Test
    void killWhileWritingLeavesNoTemporaryFile() throws Exception {
        Process p = new ProcessBuilder(java(HoldTempFile.class.getName(), tmp.toString())).start();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line = r.readLine();
            assertTrue(line != null && line.startsWith("ready "), String.valueOf(line));
            Path held = Path.of(line.substring("ready ".length()));
            assertTrue(Files.exists(held), "the temporary file exists while the process runs");
            p.destroy(); // SIGTERM, as from kill or Ctrl-C
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertFalse(Files.exists(held), "temporary file left behind by a killed process");
        } finally {
            p.destroyForcibly();
        }
        assertEquals(List.of(), CliRun.files(tmp));
    }

    /** A writer that reaches its temporary file after the kill's sweep creates none. */
    @Test
    void noTemporaryFileAfterTheSweep() throws Exception {
        Result r = run(java(dev.qwtonnx.model.SweepThenCreate.class.getName(), tmp.toString()));
        assertEquals("refused", r.out().strip());
        assertEquals(List.of(), CliRun.files(tmp));
    }

    /** The real command line killed part way: no output and no temporary file, or (if it won the race) a whole model. */
    @Test
    void killMidRunLeavesNoPartialOutput() throws Exception {
        Path out = tmp.resolve("o.onnx");
        int killed = 0;
        for (long delayMs : new long[] {400, 900}) {
            // Run in the temporary folder, where a crash would leave its hs_err file.
            Process p = new ProcessBuilder(cli(MODEL, out.toString(), "--calib", CALIB, "--quiet")).directory(tmp.toFile())
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try {
                Thread.sleep(delayMs);
                p.destroy();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            } finally {
                p.destroyForcibly();
            }
            assertTrue(p.exitValue() == 0 || p.exitValue() == 128 + 15, "exit code " + p.exitValue() + " after a kill at "
                    + delayMs + " ms: done, or ended by the signal");
            killed += p.exitValue() == 0 ? 0 : 1;
            if (Files.exists(out)) {
                // Saved before the kill (the run may have been writing its reports): the output is whole.
                ModelIO.load(out);
                Files.delete(out);
            }
            for (String report : List.of("o.report.html", "o.report.json")) {
                Files.deleteIfExists(tmp.resolve(report)); // each appears whole or not at all, like the model
            }
            assertEquals(List.of(), CliRun.files(tmp), "after a kill at " + delayMs + " ms");
        }
        Assumptions.assumeTrue(killed > 0, "every run finished before it could be killed");
    }

    /**
     * A model with nothing to quantize fails as a user error (exit 2, one line) while ORT makes the float graph's
     * session ahead on another thread; exiting under it let ORT's shutdown hook release its environment, and the
     * JVM crashed (exit 134, an hs_err file) on 3 runs in 4 of libonnx-testdata's sequence models.
     */
    @Test
    void aUserErrorWhileOrtWorksAheadExitsWithoutACrash() throws Exception {
        Path dir = Path.of(System.getProperty("qwt.onnxTestData", "/usr/share/libonnx-testdata/data"), "simple",
                "test_sequence_model1");
        Assumptions.assumeTrue(Files.isDirectory(dir), "libonnx-testdata is not installed (" + dir + " missing)");
        for (int i = 0; i < 3; i++) {
            Process p = new ProcessBuilder(cli(dir.resolve("model.onnx").toString(), tmp.resolve("o.onnx").toString(),
                    "--calib", dir.toString())).directory(tmp.toFile()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "process did not finish");
            assertEquals(2, p.exitValue(), out);
            assertTrue(out.startsWith("qwt-onnx: error: the model has no Conv, MatMul or Gemm layer"), out);
            assertEquals(List.of(), CliRun.files(tmp), "run " + i + " left files (a crash's hs_err)");
        }
    }

    /**
     * A model ORT refuses when it makes the session (a GRU of batch-first layout, which its CPU kernel does not
     * take) is one line, ORT's message in it: ORT's own log line of the same error stays off the terminal.
     */
    @Test
    void anOrtRefusalIsOneLine() throws Exception {
        Path model = tmp.resolve("gru.onnx");
        dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder b = new dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder(1, 14)
                .input("x", 1, 1, 3, 16, 16).output("y", 1, 1, 1, 1, 4);
        String flat = b.node("Flatten", List.of("x"), "flat");
        String h = b.node("MatMul", List.of(flat, b.randomInit("w", 0.05, 768, 8)), "h");
        b.init(dev.qwtonnx.model.Tensors.int64Tensor("s", new long[] {3}, new long[] {1, 1, 8}));
        String seq = b.node("Reshape", List.of(h, "s"), "seq");
        b.node(dev.qwtonnx.onnx.NodeProto.newBuilder().setOpType("GRU").setName("gru")
                .addAllInput(List.of(seq, b.randomInit("gw", 0.1, 1, 12, 8), b.randomInit("gr", 0.1, 1, 12, 4)))
                .addOutput("y").addAttribute(dev.qwtonnx.model.Nodes.intAttribute("hidden_size", 4))
                .addAttribute(dev.qwtonnx.model.Nodes.intAttribute("layout", 1)).build());
        ModelIO.save(b.build(), model, null);
        Result r = run(cli(model.toString(), tmp.resolve("o.onnx").toString(), "--calib", CALIB));
        assertEquals(2, r.code(), r.out());
        assertEquals(1, r.out().lines().count(), r.out());
        assertTrue(r.out().startsWith("qwt-onnx: error: ") && r.out().contains("layout"), r.out());
    }

    /**
     * A model bigger than the JVM's heap: the OutOfMemoryError is an internal error (exit 1) in one
     * line that says what to do, with no stack trace, and no output.
     */
    @Test
    void outOfMemoryIsOneLineAndExitCodeOne() throws Exception {
        Path model = tmp.resolve("big.onnx");
        // 64 MB of float weights. Loading maps them (no heap); rounding them makes a 16 MB int8 copy, which a
        // 16 MB heap cannot hold. The input takes the example's calibration tensors.
        int columns = (16 << 20) / 768 + 1;
        float[] big = new float[768 * columns];
        dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder b = new dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder(1, 13)
                .input("x", 1, 1, 3, 16, 16).output("y", 1, 1, columns);
        String flat = b.node("Flatten", List.of("x"), "flat");
        b.node("MatMul", List.of(flat, b.init("w", new long[] {768, columns}, big)), "y");
        ModelIO.save(b.build(), model, null);
        Path out = tmp.resolve("o.onnx");
        List<String> cmd = cli(model.toString(), out.toString(), "--calib", CALIB, "--quiet");
        cmd.set(1, "-Xmx16m");
        Result r = run(cmd);
        assertEquals(1, r.code(), r.out());
        List<String> lines = r.out().lines().toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(lines.get(0).startsWith("qwt-onnx: internal error: java.lang.OutOfMemoryError"), r.out());
        assertTrue(lines.get(0).contains("-Xmx"), r.out());
        assertEquals("(run with --verbose for the stack trace)", lines.get(1));
        assertFalse(Files.exists(out));
    }

    /** Runs {@code script} in a private mount namespace, or skips the test when this machine does not allow one. */
    private Result inMountNamespace(String script) throws Exception {
        boolean allowed;
        try {
            allowed = new ProcessBuilder("unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs " + tmp)
                    .redirectErrorStream(true).start().waitFor() == 0;
        } catch (IOException e) {
            allowed = false;
        }
        Assumptions.assumeTrue(allowed, "cannot mount a tmpfs in a private mount namespace (unshare -rm) here");
        return run(List.of("unshare", "-rm", "sh", "-c", script));
    }

    private static String quote(List<String> cmd) {
        StringBuilder b = new StringBuilder();
        for (String c : cmd) {
            b.append(" '").append(c.replace("'", "'\\''")).append('\'');
        }
        return b.toString();
    }

    /** The output folder is a 4 KB tmpfs; the model needs more: exit 2, one line, nothing left in the folder. */
    @Test
    void fullDisk() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("full"));
        String script = "mount -t tmpfs -o size=4k tmpfs '" + dir + "' && cd / &&" + quote(cli(MODEL,
                dir.resolve("o.onnx").toString(), "--calib", CALIB, "--quiet"))
                + "; echo \"exit=$?\"; echo \"left: $(ls -A '" + dir + "')\"";
        Result r = inMountNamespace(script);
        assertTrue(r.out().contains("exit=2"), r.out());
        assertTrue(r.out().contains("left: \n") || r.out().endsWith("left: "), r.out());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("qwt-onnx")).toList();
        assertEquals(1, lines.size(), r.out());
        assertTrue(lines.get(0).startsWith("qwt-onnx: error: cannot write output " + dir.resolve("o.onnx")), r.out());
        assertTrue(lines.get(0).contains("No space left on device"), r.out());
        assertFalse(r.out().contains("\tat "), r.out());
    }

    /** A read-only output folder is refused before any work is done. */
    @Test
    void unwritableOutputFolder() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("ro"));
        String script = "mount -t tmpfs -o ro,size=4k tmpfs '" + dir + "' && cd / &&" + quote(cli(MODEL,
                dir.resolve("o.onnx").toString(), "--calib", CALIB, "--quiet"))
                + "; echo \"exit=$?\"; echo \"left: $(ls -A '" + dir + "')\"";
        Result r = inMountNamespace(script);
        assertTrue(r.out().contains("exit=2"), r.out());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("qwt-onnx")).toList();
        assertEquals(List.of("qwt-onnx: error: output folder is not writable: " + dir), lines, r.out());
    }
    /**
     * ORT's warnings stay out of the user's terminal: the model carries an initializer no node reads, which
     * ORT warns about while loading it (on standard error, from native code), for each of verify's sessions.
     */
    @Test
    void ortWarningsDoNotReachTheTerminal() throws Exception {
        dev.qwtonnx.model.Model example = ModelIO.load(Path.of(MODEL));
        dev.qwtonnx.model.Model unused = example.withGraph(example.graph().toBuilder()
                .addInitializer(dev.qwtonnx.model.Tensors.floatTensor("nobody_reads_this", new long[] {2},
                        new float[] {1, 2}))
                .build());
        Path in = tmp.resolve("unused.onnx");
        Files.write(in, unused.proto().toByteArray());
        Result r = run(cli("verify", in.toString(), in.toString(), "--data", CALIB, "--runs", "0"));
        assertEquals(0, r.code(), r.out());
        assertFalse(r.out().contains("onnxruntime"), r.out());
        assertTrue(r.out().contains("cosine"), r.out());
    }
}
