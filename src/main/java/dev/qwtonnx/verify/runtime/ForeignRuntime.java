package dev.qwtonnx.verify.runtime;

import dev.qwtonnx.QwtException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Launches {@link RunOutputs} (or, for WebAssembly, {@code run-outputs.mjs}) on one
 * {@link Platform} in a process of its own, and says whether this machine can.
 *
 * <p>What each needs, and where it is looked for (a system property, else an environment
 * variable, else a default):
 * <ul>
 *   <li>qemu-user's {@code qemu-x86_64} / {@code qemu-aarch64} on the PATH;
 *   <li>ARM64: an aarch64 JVM ({@code qwt.arm64.java} / {@code QWT_ARM64_JAVA}, default Debian's
 *       {@code openjdk-17-jre-headless:arm64}), and {@code unshare -m} with {@code mount --bind}
 *       allowed (root; another user needs unprivileged user namespaces: {@code unshare -r -m}).
 *       ORT reads {@code /proc/cpuinfo} at start and crashes on the host's x86 text, so a private
 *       mount namespace shows it an ARM CPU whose {@code Features} line matches what
 *       qemu emulates ({@code asimddp} only with {@code -cpu max}: advertised without it, ORT runs
 *       dot-product instructions qemu does not have and dies of SIGILL);
 *   <li>WebAssembly: {@code node} on the PATH and onnxruntime-web in a {@code node_modules} folder
 *       ({@code qwt.ort.web} / {@code QWT_ORT_WEB}, default {@code .cache/npm/node_modules} of the
 *       current folder, where tools/setup.sh installs it).
 * </ul>
 * Every run uses one ORT intra-op thread, so latencies compare across platforms.
 */
public final class ForeignRuntime {
    static final String ARM64_JAVA = "/usr/lib/jvm/java-17-openjdk-arm64/bin/java";
    private static final String RESOURCES = "/dev/qwtonnx/verify/runtime/";

    /** Whether a platform can run here, and if not, what is missing (one line). */
    public record Availability(boolean available, String why) {
        static Availability yes() {
            return new Availability(true, "");
        }

        static Availability no(String why) {
            return new Availability(false, why);
        }
    }

    private final Platform platform;
    private Availability availability;
    /** The unshare flags the ARM64 probe found to work. */
    private List<String> unshareFlags = List.of("-m");

    private ForeignRuntime(Platform platform) {
        this.platform = platform;
    }

    public static ForeignRuntime of(Platform platform) {
        return new ForeignRuntime(platform);
    }

    public Platform platform() {
        return platform;
    }

    /** Checked once per instance; the ARM64 check starts a process to try the mount namespace. */
    public synchronized Availability availability() {
        if (availability == null) {
            availability = probe();
        }
        return availability;
    }

    private Availability probe() {
        return switch (platform) {
            case NATIVE -> Files.isExecutable(thisJava()) ? Availability.yes()
                    : Availability.no("this JVM's java is not at " + thisJava());
            case X86_AVX2 -> {
                if (!isX86Host()) {
                    yield Availability.no("qemu-x86_64 runs this JVM's java, which is not x86-64 here ("
                            + System.getProperty("os.arch") + ")");
                }
                Path qemu = onPath("qemu-x86_64");
                yield qemu == null ? Availability.no("qemu-x86_64 is not on the PATH (Debian package qemu-user)")
                        : Availability.yes();
            }
            case ARM64_DOTPROD, ARM64_NO_DOTPROD -> probeArm64();
            case WASM -> probeNode();
        };
    }

    private Availability probeArm64() {
        if (onPath("qemu-aarch64") == null) {
            return Availability.no("qemu-aarch64 is not on the PATH (Debian package qemu-user)");
        }
        Path java = arm64Java();
        if (!Files.isExecutable(java)) {
            return Availability.no("no aarch64 JVM at " + java + " (Debian openjdk-17-jre-headless:arm64, or set "
                    + "qwt.arm64.java / QWT_ARM64_JAVA)");
        }
        if (onPath("unshare") == null) {
            return Availability.no("unshare is not on the PATH (util-linux)");
        }
        Path dir = null;
        try {
            dir = Files.createTempDirectory("qwt-cpuinfo-");
            Path info = cpuinfo(dir);
            String failed = "";
            // Root can unshare the mount namespace alone; another user needs a user namespace too
            // (-r maps them to root in it), where the kernel allows unprivileged user namespaces.
            for (List<String> flags : List.of(List.of("-m"), List.of("-r", "-m"))) {
                List<String> cmd = new ArrayList<>(namespace(flags, info));
                cmd.addAll(List.of("grep", "-q", "^CPU implementer", "/proc/cpuinfo"));
                Exec r = exec(cmd, dir.resolve("probe.log"), Duration.ofSeconds(30));
                if (r.exit() == 0) {
                    unshareFlags = flags;
                    return Availability.yes();
                }
                failed = failed + (failed.isEmpty() ? "" : "; ") + "unshare " + String.join(" ", flags) + ": " + r.tail();
            }
            return Availability.no("cannot bind an ARM /proc/cpuinfo in a private mount namespace (" + failed + ")");
        } catch (IOException e) {
            return Availability.no("cannot try unshare -m: " + e.getMessage());
        } finally {
            deleteTree(dir);
        }
    }

    private Availability probeNode() {
        Path node = onPath("node");
        if (node == null) {
            return Availability.no("node is not on the PATH");
        }
        Path web = ortWebModules();
        if (!Files.isRegularFile(web.resolve("onnxruntime-web").resolve("package.json"))) {
            return Availability.no("onnxruntime-web is not installed in " + web.toAbsolutePath()
                    + " (tools/setup.sh installs it; or set qwt.ort.web / QWT_ORT_WEB to a node_modules folder)");
        }
        return Availability.yes();
    }

    /**
     * Runs each model on every sample of {@code samples} (a folder as {@code --calib} takes it; the
     * WebAssembly script reads ONNX test-data sets only) and returns what the i-th model's run
     * wrote to {@code out/model_<i>}.
     *
     * @throws QwtException when the platform is not available, the process fails or outlives {@code timeout}
     */
    public List<RunResult> run(Path samples, Path out, List<Path> models, Duration timeout) {
        Availability a = availability();
        if (!a.available()) {
            throw new QwtException(platform.description() + " is not available here: " + a.why());
        }
        try {
            Files.createDirectories(out);
            List<String> cmd = new ArrayList<>(command(out));
            cmd.add(samples.toAbsolutePath().toString());
            cmd.add(out.toAbsolutePath().toString());
            models.forEach(m -> cmd.add(m.toAbsolutePath().toString()));
            Exec r = exec(cmd, out.resolve("run.log"), timeout);
            if (r.exit() != 0) {
                throw new QwtException(platform.description() + " failed (exit " + r.exit() + "): " + r.tail());
            }
        } catch (IOException e) {
            throw new QwtException("cannot run " + platform.description() + ": " + e.getMessage(), e);
        }
        List<RunResult> results = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            results.add(RunResult.read(out.resolve("model_" + i)));
        }
        return results;
    }

    /** The command before its arguments; writes what it needs (cpuinfo, the script) to {@code work}. */
    List<String> command(Path work) throws IOException {
        List<String> jvm = new ArrayList<>(List.of("-XX:+UseSerialGC", "-Dqwt.ort.threads=1",
                "-Djava.io.tmpdir=" + work.toAbsolutePath()));
        if (platform.emulated()) {
            // The JIT's own work is emulated too, and a run is short: C1 alone costs less CPU than C2's compiles.
            jvm.add("-XX:TieredStopAtLevel=1");
        }
        jvm.addAll(List.of("-cp", classPath(), RunOutputs.class.getName()));
        List<String> cmd = new ArrayList<>();
        switch (platform) {
            case NATIVE -> cmd.add(thisJava().toString());
            case X86_AVX2 -> cmd.addAll(List.of("qemu-x86_64", "-cpu", "Haswell", thisJava().toString()));
            case ARM64_DOTPROD, ARM64_NO_DOTPROD -> {
                cmd.addAll(namespace(unshareFlags, cpuinfo(work)));
                cmd.addAll(List.of("qemu-aarch64", "-cpu", platform == Platform.ARM64_DOTPROD ? "max" : "cortex-a72",
                        arm64Java().toString()));
            }
            case WASM -> {
                Path script = work.resolve("run-outputs.mjs");
                copyResource("run-outputs.mjs", script);
                return List.of("node", script.toAbsolutePath().toString(),
                        "--modules=" + ortWebModules().toAbsolutePath());
            }
        }
        cmd.addAll(jvm);
        return cmd;
    }

    /** {@code unshare FLAGS sh -c 'mount --bind INFO /proc/cpuinfo && exec "$@"' INFO}, followed by the command. */
    private static List<String> namespace(List<String> flags, Path cpuinfo) {
        List<String> cmd = new ArrayList<>(List.of("unshare"));
        cmd.addAll(flags);
        cmd.addAll(List.of("--propagation", "private", "sh", "-c", "mount --bind \"$0\" /proc/cpuinfo && exec \"$@\"",
                cpuinfo.toAbsolutePath().toString()));
        return cmd;
    }

    /** The fake /proc/cpuinfo for this ARM64 platform, one processor entry per host CPU. */
    private Path cpuinfo(Path dir) throws IOException {
        String name = platform == Platform.ARM64_DOTPROD ? "cpuinfo-arm64-dotprod.txt" : "cpuinfo-arm64-cortex-a72.txt";
        String block = resource(name);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Runtime.getRuntime().availableProcessors(); i++) {
            sb.append(block.replace("{n}", Integer.toString(i)));
        }
        Path f = dir.resolve(name);
        Files.writeString(f, sb.toString(), StandardCharsets.US_ASCII);
        return f;
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = ForeignRuntime.class.getResourceAsStream(RESOURCES + name)) {
            if (in == null) {
                throw new IOException("resource " + name + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void copyResource(String name, Path to) throws IOException {
        Files.writeString(to, resource(name), StandardCharsets.UTF_8);
    }

    /** This JVM's class path with each entry absolute (java -jar gives the jar as it was typed). */
    private static String classPath() {
        return java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !e.isEmpty()).map(e -> Path.of(e).toAbsolutePath().toString())
                .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
    }

    static Path thisJava() {
        return Path.of(System.getProperty("java.home"), "bin", "java");
    }

    private static boolean isX86Host() {
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        return arch.equals("amd64") || arch.equals("x86_64");
    }

    static Path arm64Java() {
        return Path.of(setting("qwt.arm64.java", "QWT_ARM64_JAVA", ARM64_JAVA));
    }

    /** The node_modules folder onnxruntime-web is loaded from. */
    static Path ortWebModules() {
        return Path.of(setting("qwt.ort.web", "QWT_ORT_WEB", ".cache/npm/node_modules"));
    }

    private static String setting(String property, String env, String dflt) {
        String p = System.getProperty(property);
        if (p != null && !p.isBlank()) {
            return p;
        }
        String e = System.getenv(env);
        return e != null && !e.isBlank() ? e : dflt;
    }

    static Path onPath(String exe) {
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String d : path.split(java.io.File.pathSeparator)) {
            Path p = Path.of(d.isEmpty() ? "." : d, exe);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** A finished process: its exit code and the end of what it printed. */
    record Exec(int exit, String tail) {
    }

    private static Exec exec(List<String> cmd, Path log, Duration timeout) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                return new Exec(-1, "timed out after " + timeout.toSeconds() + " s; " + tail(log));
            }
            return new Exec(p.exitValue(), tail(log));
        } catch (InterruptedException e) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new QwtException("interrupted while running " + cmd.get(0));
        }
    }

    /** The last few lines of a log, joined into one. */
    private static String tail(Path log) throws IOException {
        if (!Files.exists(log)) {
            return "";
        }
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
        return String.join(" | ", lines.subList(Math.max(0, lines.size() - 4), lines.size()));
    }

    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // A leftover temporary file is harmless.
                }
            });
        } catch (IOException ignored) {
            // As above.
        }
    }
}
