package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.cli.Main;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** One run of the command line in this JVM, with what it printed and its exit code. */
record CliRun(int code, String out, String err) {
    static CliRun of(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new CliRun(code, out.toString(), err.toString());
    }

    /**
     * A user error: exit code 2, one line on standard error that names every one of {@code mentions},
     * no stack trace, nothing on standard output, and nothing at all written to {@code outDir}.
     */
    CliRun assertUserError(Path outDir, String... mentions) {
        assertEquals(Main.USER_ERROR, code, err);
        assertOneLine(mentions);
        assertFalse(err.contains("\tat "), err);
        assertEquals("", out, "standard output of a failed run");
        assertEquals(List.of(), files(outDir), "files left in the output folder");
        return this;
    }

    void assertOneLine(String... mentions) {
        String[] lines = err.strip().split("\n");
        assertEquals(1, lines.length, err);
        assertTrue(lines[0].startsWith("qwt-onnx: error: "), err);
        for (String m : mentions) {
            assertTrue(lines[0].contains(m), "'" + m + "' not in: " + lines[0]);
        }
    }

    static List<Path> files(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
