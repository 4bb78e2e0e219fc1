package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LauncherTest {
    private static final String JAVA = Path.of(System.getProperty("java.home"), "bin", "java").toString();

    /**
     * The picocli classes the tool runs (and the tests run) are the build's Java 8 copies, which the class archive
     * can hold: a Java 5 class file (version 49) is left out of it and read from the jar on every run
     * (tools/build/ClassVersion.java, decision 0023). Checked on four of the classes every run loads.
     */
    @Test
    void picocliClassesAreClassFilesTheArchiveHolds() throws IOException {
        for (Class<?> c : List.of(picocli.CommandLine.class, picocli.CommandLine.Model.CommandSpec.class,
                picocli.CommandLine.Help.class, picocli.CommandLine.ParseResult.class)) {
            String resource = c.getName().replace('.', '/') + ".class";
            try (java.io.InputStream in = c.getClassLoader().getResourceAsStream(resource)) {
                assertNotNull(in, resource);
                byte[] head = in.readNBytes(8);
                int major = ((head[6] & 0xff) << 8) | (head[7] & 0xff);
                assertTrue(major >= 50, resource + " is class file version " + major + " (Java 5 is 49)");
            }
            String where = String.valueOf(c.getProtectionDomain().getCodeSource().getLocation());
            assertFalse(where.endsWith(".jar") && where.contains("picocli"), c + " loads from picocli's own jar: " + where);
        }
    }

    /**
     * The launcher's classes make no call through invokedynamic (no lambda, method reference or string
     * concatenation bootstrapped at run time), and the tool's concatenations are compiled inline: the launching
     * JVM has no class archive, and each such call site's first run spins method-handle classes there (decision
     * 0023). A call site's bootstrap method is named in the class file's constant pool, so its name in the bytes
     * is what is looked for.
     */
    @Test
    void theLauncherBootstrapsNoCallSiteAndTheToolsConcatenationsAreInline() throws IOException {
        for (Class<?> c : List.of(Launcher.class, Main.class, QuantizeCommand.class)) {
            String concat = new String(classBytes(c), java.nio.charset.StandardCharsets.ISO_8859_1);
            assertFalse(concat.contains("makeConcatWithConstants"), c + " concatenates strings through invokedynamic");
        }
        for (Class<?> c : Launcher.class.getDeclaredClasses()) {
            assertFalse(new String(classBytes(c), java.nio.charset.StandardCharsets.ISO_8859_1).contains("LambdaMetafactory"),
                    c + " makes a lambda");
        }
        String launcher = new String(classBytes(Launcher.class), java.nio.charset.StandardCharsets.ISO_8859_1);
        assertFalse(launcher.contains("LambdaMetafactory"), "the launcher makes a lambda or method reference");
        assertTrue(new String(classBytes(Main.class), java.nio.charset.StandardCharsets.ISO_8859_1)
                .contains("LambdaMetafactory"), "the check reads class files as they are: Main does make lambdas");
    }

    private static byte[] classBytes(Class<?> c) throws IOException {
        String resource = c.getName().replace('.', '/') + ".class";
        try (java.io.InputStream in = c.getClassLoader().getResourceAsStream(resource)) {
            assertNotNull(in, resource);
            return in.readAllBytes();
        }
    }

    @Test
    void forwardsTheJvmOptionsOfAJarRunAndStaysInProcessForThoseASecondJvmMustNotRepeat() {
        assertEquals(List.of(), Launcher.jvmOptions(new String[] {"-jar", "q.jar", "in.onnx", "out.onnx"}));
        assertEquals(List.of("-Xmx2g", "-Dx=-jar"), Launcher.jvmOptions(new String[] {"-Xmx2g", "-Dx=-jar", "-jar", "q.jar"}));
        assertNull(Launcher.jvmOptions(new String[] {"-cp", "q.jar", "dev.qwtonnx.cli.Main"}), "not a jar run");
        assertNull(Launcher.jvmOptions(new String[] {"-agentlib:jdwp=transport=dt_socket,address=5005", "-jar", "q.jar"}),
                "a debugger's port cannot be bound twice");
        assertNull(Launcher.jvmOptions(new String[] {"-XX:SharedArchiveFile=mine.jsa", "-jar", "q.jar"}), "the user's archive");
        assertNull(Launcher.jvmOptions(new String[] {"-Xshare:off", "-jar", "q.jar"}));
    }

    @Test
    void aDebuggerInTheEnvironmentsOptionsKeepsTheRunInProcess() {
        assertTrue(Launcher.inheritedOptionsForbid(java.util.Map.of("JAVA_TOOL_OPTIONS",
                "-Xmx1g -agentlib:jdwp=transport=dt_socket,server=y,address=5005")), "the child would find the port taken");
        assertTrue(Launcher.inheritedOptionsForbid(java.util.Map.of("JDK_JAVA_OPTIONS", "-Xshare:off")));
        assertFalse(Launcher.inheritedOptionsForbid(java.util.Map.of("JAVA_TOOL_OPTIONS", "-Xmx1g -Dfile.encoding=UTF-8")));
        assertFalse(Launcher.inheritedOptionsForbid(java.util.Map.of()));
    }

    @Test
    void helpAndVersionStayInProcess() {
        assertNull(Launcher.plan(new String[] {"--version"}));
        assertNull(Launcher.plan(new String[] {"quantize", "--help"}));
        assertNull(Launcher.plan(new String[0]));
        // The test JVM runs from classes, not from one jar: a quantize run stays here too.
        assertNull(Launcher.plan(new String[] {"in.onnx", "out.onnx"}));
    }

    @Test
    void theArchiveIsNamedByTheJarAndTheJvmOptions(@TempDir Path dir) throws IOException {
        Path jar = Files.write(dir.resolve("q.jar"), new byte[] {1, 2, 3});
        Path cache = dir.resolve("cache");
        String[] args = {"in.onnx", "out.onnx"};
        Launcher.Child once = Launcher.child(JAVA, List.of("-Xmx1g"), jar, cache, Launcher.MAIN, args, true);
        assertNull(once.writes(), "a jar's first run does not pay for writing the archive");
        assertTrue(once.command().stream().noneMatch(o -> o.contains("Archive")));
        assertTrue(Files.exists(Launcher.seen(once.archive())), "it marks the jar seen");
        Launcher.Child first = Launcher.child(JAVA, List.of("-Xmx1g"), jar, cache, Launcher.MAIN, args, true);
        assertNotNull(first.writes(), "the second run writes the archive");
        List<String> c = first.command();
        assertEquals(JAVA, c.get(0));
        assertEquals("-Xmx1g", c.get(1));
        assertEquals(Launcher.HEAP, c.subList(2, 2 + Launcher.HEAP.size()), "the footprint's collector and heap");
        List<String> own = Launcher.child(JAVA, List.of("-XX:+UseG1GC"), jar, cache, Launcher.MAIN, new String[0], true).command();
        assertFalse(own.contains("-XX:+UseSerialGC"), "the user's collector is kept");
        List<String> big = Launcher.child(JAVA, List.of(), jar, cache, Launcher.MAIN, new String[0], false).command();
        assertFalse(big.contains("-XX:+UseSerialGC"), "a large model keeps the JVM's collector");
        int jit = 2 + Launcher.HEAP.size();
        // A run naming no model or samples is small: C1 alone.
        assertEquals(Launcher.C1, c.subList(jit, jit + Launcher.C1.size()), "a small run's compilation");
        List<String> ownJit = Launcher.child(JAVA, List.of("-XX:TieredStopAtLevel=1"), jar, cache, Launcher.MAIN,
                new String[0], false).command();
        assertTrue(ownJit.stream().noneMatch(Launcher.JIT::contains), "the user's compilation is kept: " + ownJit);
        assertEquals(1, ownJit.stream().filter(o -> o.startsWith("-XX:TieredStopAtLevel")).count(), ownJit.toString());
        assertTrue(Launcher.choosesCompilation("-Xint"));
        assertTrue(Launcher.choosesCompilation("-XX:-TieredCompilation"));
        assertFalse(Launcher.choosesCompilation("-Xmx1g"));
        assertTrue(Launcher.choosesHeap("-Xms1g"));
        assertTrue(Launcher.choosesHeap("-XX:+UseParallelGC"));
        assertFalse(Launcher.choosesHeap("-Xmx1g"), "the maximum heap does not change the child's collector");
        assertTrue(Launcher.choosesHeap("-XX:MaxHeapFreeRatio=10"), "the heap's free share is the user's too");
        List<String> ownShare = Launcher.child(JAVA, List.of("-XX:MaxHeapFreeRatio=10"), jar, cache, Launcher.MAIN,
                new String[0], true).command();
        assertTrue(ownShare.stream().noneMatch(Launcher.HEAP::contains), "none of ours beside it: " + ownShare);
        assertTrue(Launcher.environmentChoosesHeap(java.util.Map.of("_JAVA_OPTIONS", " -Xss2m  -XX:MaxHeapFreeRatio=10")));
        assertTrue(Launcher.environmentChoosesHeap(java.util.Map.of("JAVA_TOOL_OPTIONS", "-XX:+UseG1GC")));
        assertFalse(Launcher.environmentChoosesHeap(java.util.Map.of("JAVA_TOOL_OPTIONS", "-Xmx2g", "PATH", "/bin")));
        assertTrue(c.contains("-XX:ArchiveClassesAtExit=" + first.writes()));
        assertTrue(c.contains("-D" + Launcher.ARCHIVING_PROPERTY + "=1"), "the run writing the archive loads more");
        assertTrue(c.contains("-D" + Launcher.CHILD_PROPERTY + "=1"), "the child runs the command itself");
        assertEquals(List.of("-cp", jar.toString(), Launcher.MAIN, "in.onnx", "out.onnx"), c.subList(c.size() - 5, c.size()));

        Files.write(first.archive(), new byte[] {9});
        Launcher.Child again = Launcher.child(JAVA, List.of("-Xmx1g"), jar, cache, Launcher.MAIN, new String[] {"in.onnx", "out.onnx"}, true);
        assertNull(again.writes());
        assertFalse(again.command().contains("-D" + Launcher.ARCHIVING_PROPERTY + "=1"), "a run mapping it does not");
        assertTrue(again.command().contains("-XX:SharedArchiveFile=" + first.archive()));

        assertNotEquals(first.archive(), Launcher.child(JAVA, List.of("-Xmx2g"), jar, cache, Launcher.MAIN, new String[0], true).archive(),
                "other JVM options");
        Files.setLastModifiedTime(jar, FileTime.fromMillis(Files.getLastModifiedTime(jar).toMillis() + 5000));
        Path rebuilt = Launcher.child(JAVA, List.of("-Xmx1g"), jar, cache, Launcher.MAIN, new String[0], true).archive();
        assertNotEquals(first.archive(), rebuilt, "a rebuilt jar never maps the old archive");
        String prefix = first.archive().getFileName().toString();
        prefix = prefix.substring(0, prefix.lastIndexOf('-'));
        assertTrue(rebuilt.getFileName().toString().startsWith(prefix), "the same jar's builds share a prefix");
    }

    /**
     * A run whose model and samples hold up to 16 MB compiles with C1 alone; past that, samples or model, with C2 at
     * ten times the JVM's thresholds. The sizes are the files' (sparse files here), the samples' counted in the
     * folders the command names and their sub-folders (ONNX test-data sets).
     */
    @Test
    void aSmallRunCompilesWithC1AloneAndALargerOneWithC2(@TempDir Path dir) throws IOException {
        Path jar = Files.write(dir.resolve("q.jar"), new byte[] {1, 2, 3});
        Path cache = dir.resolve("cache");
        Path model = sized(dir.resolve("m.onnx"), 2L << 20);
        Path calib = Files.createDirectories(dir.resolve("calib"));
        sized(calib.resolve("a.npz"), 6L << 20);
        Path set = Files.createDirectories(calib.resolve("test_data_set_0"));
        sized(set.resolve("input_0.pb"), 6L << 20);
        String[] small = {model.toString(), dir.resolve("o.onnx").toString(), "--calib", calib.toString()};
        assertEquals(12L << 20, Launcher.folderBytes(small));
        List<String> c = Launcher.child(JAVA, List.of(), jar, cache, Launcher.MAIN, small, true).command();
        assertTrue(c.containsAll(Launcher.C1) && c.stream().noneMatch(Launcher.JIT::contains), c.toString());
        sized(set.resolve("input_1.pb"), 6L << 20);
        c = Launcher.child(JAVA, List.of(), jar, cache, Launcher.MAIN, small, true).command();
        assertTrue(c.containsAll(Launcher.JIT) && c.stream().noneMatch(Launcher.C1::contains), "samples past 16 MB: " + c);
        Path encoder = sized(dir.resolve("big.onnx"), 90L << 20);
        c = Launcher.child(JAVA, List.of(), jar, cache, Launcher.MAIN, new String[] {encoder.toString(), "o.onnx"}, true)
                .command();
        assertTrue(c.containsAll(Launcher.JIT), "a 90 MB model: " + c);
    }

    private static Path sized(Path file, long bytes) throws IOException {
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(bytes);
        }
        return file;
    }

    @Test
    void theLargestFileACommandNamesIsMeasuredWithItsExternalData(@TempDir Path dir) throws IOException {
        Path model = Files.write(dir.resolve("m.onnx"), new byte[100]);
        Files.write(dir.resolve("m.onnx.data"), new byte[1000]);
        Path calib = Files.createDirectories(dir.resolve("calib"));
        Files.write(calib.resolve("s.npz"), new byte[5000]);
        Path earlier = Files.write(dir.resolve("out.onnx"), new byte[300]);
        assertEquals(1100, Launcher.namedBytes(new String[] {model.toString(), earlier.toString(),
                "--calib", calib.toString(), "--memory", "512"}), "the model and its data; not the samples' folder");
    }

    @Test
    void aSuccessfulRunKeepsItsArchiveAndTheNextMapsIt(@TempDir Path dir) throws Exception {
        Path jar = helloJar(dir);
        Path cache = dir.resolve("cache");
        Path out = dir.resolve("out.txt");

        assertNull(Launcher.child(JAVA, List.of(), jar, cache, "Hello", new String[] {"3"}, true).writes(), "the first run");
        Launcher.Child failing = Launcher.child(JAVA, List.of(), jar, cache, "Hello", new String[] {"3"}, true);
        assertEquals(3, Launcher.run(failing, ProcessBuilder.Redirect.to(out.toFile())), "the child's exit code");
        assertFalse(Files.exists(failing.archive()), "a failed run's archive is not kept");
        assertFalse(Files.exists(failing.writes()));

        String name = failing.archive().getFileName().toString();
        Path older = Files.write(cache.resolve(name.substring(0, name.lastIndexOf('-')) + "-0.jsa"), new byte[] {1});
        Path other = Files.write(cache.resolve("classes-0-0.jsa"), new byte[] {1});
        java.nio.file.attribute.FileTime longAgo = java.nio.file.attribute.FileTime.fromMillis(
                System.currentTimeMillis() - (Launcher.UNUSED_DAYS + 1) * 86_400_000L);
        Path unused = Files.setLastModifiedTime(Files.write(cache.resolve("classes-1-1.jsa"), new byte[] {1}), longAgo);
        Path unusedMark = Files.setLastModifiedTime(Files.write(cache.resolve("classes-2-2.seen"), new byte[0]), longAgo);
        Launcher.Child first = Launcher.child(JAVA, List.of(), jar, cache, "Hello", new String[] {"0"}, true);
        assertNotNull(first.writes());
        assertEquals(0, Launcher.run(first, ProcessBuilder.Redirect.to(out.toFile())));
        assertEquals("hello 0\n", Files.readString(out), "the child's output, without class-sharing notes");
        // A JDK built without its default class archive cannot write a dynamic one: nothing to keep there.
        assumeTrue(Files.exists(first.archive()), "this JVM writes no class archive");
        assertTrue(Files.size(first.archive()) > 0, "the archive the JVM wrote at exit");
        assertFalse(Files.exists(first.writes()));
        assertFalse(Files.exists(older), "an earlier build's archive of the same jar is removed");
        assertFalse(Files.exists(Launcher.seen(first.archive())), "and the mark of the first run");
        assertTrue(Files.exists(other), "another jar's stays");
        assertFalse(Files.exists(unused), "another jar's archive unused for " + Launcher.UNUSED_DAYS + " days goes");
        assertFalse(Files.exists(unusedMark), "and a mark as old");
        Files.setLastModifiedTime(first.archive(), longAgo);

        Launcher.Child next = Launcher.child(JAVA, List.of(), jar, cache, "Hello", new String[] {"0"}, true);
        assertNull(next.writes());
        assertTrue(Files.getLastModifiedTime(first.archive()).compareTo(longAgo) > 0, "an archive mapped is marked used");
        assertEquals(0, Launcher.run(next, ProcessBuilder.Redirect.to(out.toFile())));
        assertEquals("hello 0\n", Files.readString(out));
        assertNull(Launcher.run(new Launcher.Child(List.of(dir.resolve("no-such-java").toString()), null, null, java.util.Map.of()),
                ProcessBuilder.Redirect.to(out.toFile())), "a JVM that cannot start: the caller runs the command");
    }

    @Test
    void theChildsCHeapIsOnHugePagesOnLinuxUnlessTheUserChoosesOtherwise() {
        assertEquals("glibc.malloc.hugetlb=1", Launcher.environment(java.util.Map.of(), "Linux").get("GLIBC_TUNABLES"));
        assertEquals("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
                Launcher.environment(java.util.Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"), "Linux")
                        .get("GLIBC_TUNABLES"),
                "the user's own tunables are kept");
        assertFalse(Launcher.environment(java.util.Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"), "Linux")
                .containsKey("GLIBC_TUNABLES"), "the user's choice of huge pages stands (the child inherits it)");
        assertFalse(Launcher.environment(java.util.Map.of(), "Mac OS X").containsKey("GLIBC_TUNABLES"));
        assertFalse(Launcher.environment(java.util.Map.of(), "Windows 11").containsKey("GLIBC_TUNABLES"));
    }

    @Test
    void theChildRunsOrtWithoutTelemetryUnlessTheUserChoosesOtherwise() {
        for (String os : List.of("Linux", "Mac OS X", "Windows 11")) {
            java.util.Map<String, String> env = Launcher.environment(java.util.Map.of(), os);
            assertEquals("1", env.get("ORT_DISABLE_TELEMETRY"), os + ": ORT 1.29's switch");
            assertEquals("1", env.get("ORT_TELEMETRY_DISABLED"), os + ": later releases' switch");
        }
        for (String chosen : List.of("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")) {
            java.util.Map<String, String> env = Launcher.environment(java.util.Map.of(chosen, "0"), "Linux");
            assertFalse(env.containsKey("ORT_DISABLE_TELEMETRY") || env.containsKey("ORT_TELEMETRY_DISABLED"),
                    "a user who set " + chosen + " keeps their choice: " + env);
        }
    }

    @Test
    void theChildGetsTheEnvironmentItWasPlannedWith(@TempDir Path dir) throws Exception {
        Path jar = jar(dir, "Env", "public class Env { public static void main(String[] a) {"
                + " System.out.println(System.getenv(\"GLIBC_TUNABLES\") + \" \" + System.getenv(\"ORT_DISABLE_TELEMETRY\")); } }");
        Launcher.Child child = Launcher.child(JAVA, List.of(), jar, dir.resolve("cache"), "Env", new String[0], true);
        Path out = dir.resolve("out.txt");
        assertEquals(0, Launcher.run(child, ProcessBuilder.Redirect.to(out.toFile())));
        String expected = child.environment().getOrDefault("GLIBC_TUNABLES", System.getenv("GLIBC_TUNABLES")) + " "
                + child.environment().getOrDefault("ORT_DISABLE_TELEMETRY", System.getenv("ORT_DISABLE_TELEMETRY"));
        assertEquals(expected + "\n", Files.readString(out));
        if (System.getProperty("os.name").startsWith("Linux")) {
            assertTrue(Files.readString(out).contains("glibc.malloc.hugetlb"), Files.readString(out));
        }
    }

    /** A jar of one class that prints "hello CODE" and exits with CODE. */
    private static Path helloJar(Path dir) throws IOException {
        return jar(dir, "Hello", "public class Hello { public static void main(String[] a) {"
                + " System.out.println(\"hello \" + a[0]); System.exit(Integer.parseInt(a[0])); } }");
    }

    /** A jar of one class {@code name} compiled from {@code source}. */
    private static Path jar(Path dir, String name, String source) throws IOException {
        Path src = Files.writeString(dir.resolve(name + ".java"), source);
        assertEquals(0, ToolProvider.getSystemJavaCompiler().run(null, null, null, "-d", dir.toString(), src.toString()));
        Path jar = dir.resolve(name.toLowerCase(java.util.Locale.ROOT) + ".jar");
        try (OutputStream o = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(o)) {
            j.putNextEntry(new JarEntry(name + ".class"));
            j.write(Files.readAllBytes(dir.resolve(name + ".class")));
            j.closeEntry();
        }
        return jar;
    }
}
