package dev.qwtonnx.cli;

import dev.qwtonnx.ort.NativeLibraryCache;
import dev.qwtonnx.ort.Telemetry;
import java.io.File;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32;

/**
 * The jar's entry point ({@code java -jar qwt-onnx.jar ...}): runs the command in a second JVM that maps
 * the tool's classes from a class-data-sharing archive of an earlier run, instead of reading, inflating
 * and verifying its classes from the jar on every start (1700 on a small model's run, and 1000 more of the JDK
 * that its default archive does not hold).
 *
 * <p>A JVM takes the archive only as a command-line option ({@code -XX:SharedArchiveFile}), which a jar's
 * manifest cannot give, hence the second JVM: mapping the classes saves the child more than starting the launching
 * JVM costs (docs/decisions/0023-launcher.md has the figures). The second run of a jar writes the archive as it
 * exits (once, with the classes it loads for other runs; the first only marks the jar seen), under
 * {@code ~/.cache/qwt-onnx} (see
 * {@link NativeLibraryCache#cacheRoot()}) in a file named by the jar, the JVM and the JVM options, so a
 * rebuilt jar or another JVM never maps a stale archive; it is written to a temporary name and renamed.
 *
 * <p>The run stays in this JVM (as before) where a second one would not be the same run: options that
 * manage class sharing or attach an agent or a debugger, a command line the JVM does not show, classes not
 * in a jar, no cache directory, {@code QWT_ONNX_IN_PROCESS} set, help and version requests (too short to
 * pay), or a second JVM that cannot start. The child inherits the terminal, the environment (with ORT's
 * telemetry off and, on Linux, glibc's heap on huge pages, {@link #environment}) and the JVM options; its exit
 * code is this process's; stopping this process stops it.
 *
 * <p>This class runs in a JVM without the archive, so its path to the child makes no lambda, method reference or
 * stream: the first such call site in a JVM spins method-handle classes, which would delay the child's start.
 */
public final class Launcher {
    /** Set in the child: it runs the command itself. */
    static final String CHILD_PROPERTY = "qwt.launched";
    /** Set in the child that writes the archive: it loads what other runs load before exiting ({@link Main}). */
    static final String ARCHIVING_PROPERTY = "qwt.writesArchive";
    /** Set (to anything) to run every command in the launching JVM. */
    static final String IN_PROCESS_ENV = "QWT_ONNX_IN_PROCESS";
    /**
     * The child's collector and starting heap, unless the user's JVM options choose their own: the serial
     * collector from a 64 MB heap, keeping 20 to 40 % of the heap free after a full collection rather than its
     * default 40 to 70 %. G1, the JVM's choice on two cores and more, sizes its young generation for pause time,
     * not footprint, and grows it with the rate at which a run copies activations out of ORT, so a run's heap
     * holds several times its live data; a run's live data is small beside ORT's memory, and its pauses are short
     * (docs/decisions/0023-launcher.md has the figures).
     */
    static final List<String> HEAP = List.of("-XX:+UseSerialGC", "-Xms64m", "-XX:MinHeapFreeRatio=20",
            "-XX:MaxHeapFreeRatio=40");
    /**
     * The child's JIT thresholds for a run past {@link #C1_RUNS_UP_TO} (a smaller one takes {@link #C1}), unless the
     * user's JVM options choose their own compilation: a method is compiled by
     * C2, the optimizing compiler, only after ten times the invocations and loop iterations the JVM waits for by
     * default. A run executes much of its code (model editing, option parsing, the report) a few thousand times,
     * enough for C2 by default, and C2's compiler thread then takes a core from ORT's threads for code that runs
     * briefly; the loops that run long (sums over activations, calibration's observers) reach the higher
     * thresholds in their first pass. C1 alone would slow the long CNN runs (docs/decisions/0023-launcher.md).
     */
    static final List<String> JIT = List.of("-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
            "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=400000");
    /**
     * The child's compilation for a small run (the model and the samples together up to {@link #C1_RUNS_UP_TO}),
     * unless the user's JVM options choose their own: C1 alone, no optimizing compiler. Such a run is over in one or
     * two seconds, before C2's code pays back the core its compiler thread takes from ORT's threads; on larger runs
     * C1 alone is slower as often as faster, so they keep C2 at {@link #JIT}'s thresholds
     * (docs/decisions/0023-launcher.md).
     */
    static final List<String> C1 = List.of("-XX:TieredStopAtLevel=1");
    /**
     * Bytes of a run's largest named file (the model, with its external data) and of the files in its named folders
     * (the samples) up to which the child compiles with C1 alone: the small models of the zoo take 0.5 to 8 MB, the
     * recognizers 26 MB and more, the encoders 90 MB and more.
     */
    static final long C1_RUNS_UP_TO = 16L << 20;
    /**
     * Bytes of the largest file a command names (a model, with its external data) up to which the child takes
     * {@link #HEAP}; past it the JVM's own collector. The model is live data, which the serial collector compacts on
     * one thread each time the heap grows; up to about a gigabyte that costs no time measured, and G1's footprint
     * costs memory: a 436 MB encoder 11.3-12.9 s and 1.56-1.61 GB against G1's 14.8-15.7 s and 2.18-2.35 GB, a
     * 906 MB one of six MatMuls 14.9-17.7 s against 15.6-16.0 s, 100-150 MB less (docs/decisions/0023-launcher.md).
     */
    static final long HEAP_FILES_UP_TO = 1L << 30;
    /**
     * Days after which an archive no run has mapped (or a first run's mark) is removed, whichever jar it is of, when
     * an archive is written: each jar (a path) has its own, about 20 MB, and a jar moved, renamed or replaced by a
     * release elsewhere would leave its archive in the cache for good.
     */
    static final int UNUSED_DAYS = 30;
    /** The command line's class, by name: this class must not load picocli before it knows where the run goes. */
    static final String MAIN = "dev.qwtonnx.cli.Main";

    private Launcher() {
    }

    public static void main(String[] args) {
        Child child = plan(args);
        if (child != null) {
            Integer code = run(child, ProcessBuilder.Redirect.INHERIT);
            if (code != null) {
                System.exit(code);
            }
        }
        Main.main(args);
    }

    /**
     * A child JVM's command line, the archive it writes as it exits (null: it maps one, or the jar's first run), and
     * the variables it gets beside the environment it inherits.
     */
    record Child(List<String> command, Path writes, Path archive, Map<String, String> environment) {
    }

    /** glibc's tunable that backs the C heap's memory with transparent huge pages where the system allows them. */
    static final String HUGE_PAGES = "glibc.malloc.hugetlb=1";
    /** The variable glibc reads its tunables from, as {@code name=value} pairs joined by colons. */
    static final String TUNABLES = "GLIBC_TUNABLES";

    /**
     * What the child gets beside {@code inherited}: ORT's telemetry switched off unless the user set ORT's switch
     * ({@link Telemetry}); on Linux, glibc's C heap on transparent huge pages
     * ({@link #HUGE_PAGES}, added to the user's own tunables unless they choose {@code glibc.malloc.hugetlb}
     * themselves). ORT allocates its weights and activations with malloc; a 4 KB page of them costs a page fault
     * the first time it is written, and a run writes hundreds of MB afresh in each session it makes, so a huge
     * page takes 512 such faults away. Where the system's setting is {@code madvise} (Debian's default) glibc
     * asks for them; {@code always} gives them already and {@code never} none, and other C libraries ignore the
     * variable (docs/decisions/0023-launcher.md has the figures).
     */
    static Map<String, String> environment(Map<String, String> inherited, String osName) {
        Map<String, String> out = new java.util.TreeMap<>(Telemetry.offUnlessChosen(inherited));
        String own = inherited.getOrDefault(TUNABLES, "");
        if (osName.toLowerCase(java.util.Locale.ROOT).startsWith("linux") && !own.contains("glibc.malloc.hugetlb")) {
            out.put(TUNABLES, own.isEmpty() ? HUGE_PAGES : own + ":" + HUGE_PAGES);
        }
        return out;
    }

    /** The child to run {@code args} in, or null to run them here. */
    static Child plan(String[] args) {
        if (System.getProperty(CHILD_PROPERTY) != null || System.getenv(IN_PROCESS_ENV) != null || onlyPrints(args)) {
            return null;
        }
        try {
            Optional<String> java = ProcessHandle.current().info().command();
            Optional<String[]> line = ProcessHandle.current().info().arguments();
            String classPath = System.getProperty("java.class.path", "");
            Path cache = NativeLibraryCache.cacheRoot();
            if (java.isEmpty() || line.isEmpty() || cache == null || classPath.contains(File.pathSeparator)
                    || !classPath.endsWith(".jar")) {
                return null;
            }
            List<String> options = jvmOptions(line.get());
            Path jar = Path.of(classPath).toAbsolutePath();
            if (options == null || !Files.isRegularFile(jar) || inheritedOptionsForbid(System.getenv())) {
                return null;
            }
            return child(java.get(), options, jar, cache, MAIN, args,
                    namedBytes(args) <= HEAP_FILES_UP_TO && !environmentChoosesHeap(System.getenv()));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * Whether {@code args} only print usage, help or the version: no ORT, no second JVM (too short to pay). Here
     * rather than in {@link Main}, which this class reaches only by name before it knows where the run goes.
     */
    static boolean onlyPrints(String[] args) {
        for (String a : args) {
            if (a.equals("--help") || a.equals("-h") || a.equals("--version") || a.equals("-V") || a.equals("help")) {
                return true;
            }
        }
        return args.length == 0;
    }

    /**
     * The JVM options of a {@code java [options] -jar JAR args} command line (its arguments after the
     * executable), or null where the run must stay in this JVM: no {@code -jar}, or an option a second JVM
     * must not repeat or that manages class sharing itself.
     */
    static List<String> jvmOptions(String[] line) {
        int jar = Arrays.asList(line).indexOf("-jar");
        if (jar < 0) {
            return null;
        }
        List<String> options = new ArrayList<>(Arrays.asList(line).subList(0, jar));
        for (String o : options) {
            if (o.startsWith("-agentlib") || o.startsWith("-agentpath") || o.startsWith("-javaagent")
                    || o.startsWith("-Xrunjdwp") || o.startsWith("-Xdebug") || o.startsWith("-Xshare")
                    || o.contains("SharedArchiveFile") || o.contains("ArchiveClassesAtExit")
                    || o.contains("StartFlightRecording") || o.startsWith("@")) {
                return null;
            }
        }
        return options;
    }

    /**
     * Whether the options every JVM of this environment takes ({@code JAVA_TOOL_OPTIONS}, {@code JDK_JAVA_OPTIONS},
     * {@code _JAVA_OPTIONS} in {@code environment}), which the child inherits, hold one a second JVM must not repeat.
     */
    static boolean inheritedOptionsForbid(java.util.Map<String, String> environment) {
        for (String[] o : environmentOptions(environment)) {
            String[] line = Arrays.copyOf(o, o.length + 1);
            line[o.length] = "-jar";
            if (jvmOptions(line) == null) {
                return true;
            }
        }
        return false;
    }

    /** The JVM options each of these variables holds, where set: the JVM reads them, and so does the child. */
    static final List<String> OPTIONS_VARIABLES = List.of("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS");

    /** The options of each {@link #OPTIONS_VARIABLES} variable set in {@code environment}, one array per variable. */
    private static List<String[]> environmentOptions(java.util.Map<String, String> environment) {
        List<String[]> out = new ArrayList<>();
        for (String name : OPTIONS_VARIABLES) {
            String v = environment.get(name);
            if (v != null && !v.isBlank()) {
                out.add(v.trim().split("\\s+"));
            }
        }
        return out;
    }

    /**
     * The child running {@code main} of {@code jar} with its archive under {@code cache}: mapping the archive if
     * there is one, else writing it; with {@code footprint}, the collector and heap of {@link #HEAP} unless the
     * user's options choose their own.
     */
    static Child child(String java, List<String> options, Path jar, Path cache, String main, String[] args,
            boolean footprint) throws IOException {
        String jarKey = crc(jar.toString());
        String key = crc(jarKey + '|' + Files.size(jar) + '|' + Files.getLastModifiedTime(jar).toMillis() + '|'
                + System.getProperty("java.home") + '|' + System.getProperty("java.vm.version") + '|'
                + String.join("\u0000", options));
        Path archive = cache.resolve("classes-" + jarKey + "-" + key + ".jsa");
        List<String> command = new ArrayList<>();
        command.add(java);
        command.addAll(options);
        boolean heapChosen = false;
        boolean compilationChosen = false;
        for (String o : options) {
            heapChosen |= choosesHeap(o);
            compilationChosen |= choosesCompilation(o);
        }
        if (footprint && !heapChosen) {
            command.addAll(HEAP);
        }
        if (!compilationChosen) {
            command.addAll(namedBytes(args) + folderBytes(args) <= C1_RUNS_UP_TO ? C1 : JIT);
        }
        Path writes = null;
        Path seen = seen(archive);
        if (Files.isRegularFile(archive) && Files.size(archive) > 0) {
            command.add("-XX:SharedArchiveFile=" + archive);
            // Marked used: archives of other jars left unused for UNUSED_DAYS are removed when one is written.
            try {
                Files.setLastModifiedTime(archive, FileTime.fromMillis(System.currentTimeMillis()));
            } catch (IOException | RuntimeException e) {
                // Only the pruning reads it.
            }
        } else if (Files.exists(seen)) {
            writes = cache.resolve(archive.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
            command.add("-XX:ArchiveClassesAtExit=" + writes);
            command.add("-D" + ARCHIVING_PROPERTY + "=1");
        } else {
            // The first run of a jar only marks it seen: writing the archive costs the run that does it about 2 s,
            // which a jar run once (or from a home directory made afresh for each run) would pay every time.
            Files.createDirectories(cache);
            try {
                Files.createFile(seen);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                // A run beside this one marked it first.
            }
        }
        // The JVM's class-sharing notes (classes it cannot archive, an archive it cannot map) would reach the
        // user's terminal; an archive it cannot map only costs the time it would have saved.
        command.add("-Xlog:cds=off");
        command.add("-Xlog:cds+dynamic=off");
        command.add("-D" + CHILD_PROPERTY + "=1");
        command.add("-cp");
        command.add(jar.toString());
        command.add(main);
        command.addAll(Arrays.asList(args));
        return new Child(List.copyOf(command), writes, archive,
                environment(System.getenv(), System.getProperty("os.name", "")));
    }

    /**
     * Runs the child, its standard input this process's and its output and errors to {@code out}; its exit code,
     * or null when it could not start (the caller runs the command itself). A stopped launcher (Ctrl-C, a
     * timeout's signal) stops the child and waits for it to clean up. A written archive is kept only from a run
     * that succeeded, and replaces the archives of earlier builds of the same jar; archives of any jar unused for
     * {@link #UNUSED_DAYS} go with them.
     */
    static Integer run(Child child, ProcessBuilder.Redirect out) {
        Process p;
        try {
            ProcessBuilder b = new ProcessBuilder(child.command()).redirectInput(ProcessBuilder.Redirect.INHERIT)
                    .redirectOutput(out).redirectError(out);
            b.environment().putAll(child.environment());
            p = b.start();
        } catch (IOException | RuntimeException e) {
            return null;
        }
        Runtime.getRuntime().addShutdownHook(new StopChild(p));
        int code;
        while (true) {
            try {
                code = p.waitFor();
                break;
            } catch (InterruptedException e) {
                // Nothing here interrupts this thread; the wait lasts as long as the child, however it ends.
            }
        }
        if (child.writes() != null) {
            keep(child.writes(), child.archive(), code == 0);
        }
        return code;
    }

    /** Stops the child as this process is stopped, and waits for it to clean up. */
    private static final class StopChild extends Thread {
        private final Process child;

        StopChild(Process child) {
            super("qwt-onnx-stop-child");
            this.child = child;
        }

        @Override
        public void run() {
            if (child.isAlive()) {
                child.destroy();
                try {
                    child.waitFor();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /**
     * Bytes of the largest regular file among {@code args} with its external data: the model's scale (directories
     * do not count; an output left by an earlier run is smaller than its input).
     */
    static long namedBytes(String[] args) {
        long largest = 0;
        for (String a : args) {
            try {
                Path p = Path.of(a);
                if (Files.isRegularFile(p)) {
                    long bytes = Files.size(p);
                    Path data = p.resolveSibling(p.getFileName() + ".data");
                    if (Files.isRegularFile(data)) {
                        bytes += Files.size(data);
                    }
                    largest = Math.max(largest, bytes);
                }
            } catch (IOException | RuntimeException e) {
                // Not a path: an option or a value.
            }
        }
        return largest;
    }

    /**
     * Bytes of the regular files in the folders {@code args} name and in their sub-folders (ONNX test-data sets):
     * the samples' scale. Counting stops past {@link #C1_RUNS_UP_TO}, all that is asked of it.
     */
    static long folderBytes(String[] args) {
        long bytes = 0;
        for (String a : args) {
            try {
                Path p = Path.of(a);
                if (Files.isDirectory(p)) {
                    bytes = filesBytes(p, 1, bytes);
                }
            } catch (IOException | RuntimeException e) {
                // Not a folder: an option or a value.
            }
            if (bytes > C1_RUNS_UP_TO) {
                return bytes;
            }
        }
        return bytes;
    }

    /**
     * {@code bytes} plus those of the regular files in {@code dir} and, {@code depth} levels down, in its sub-folders;
     * counting stops past {@link #C1_RUNS_UP_TO}.
     */
    private static long filesBytes(Path dir, int depth, long bytes) throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path f : files) {
                if (Files.isRegularFile(f)) {
                    bytes += Files.size(f);
                } else if (depth > 0 && Files.isDirectory(f)) {
                    bytes = filesBytes(f, depth - 1, bytes);
                }
                if (bytes > C1_RUNS_UP_TO) {
                    return bytes;
                }
            }
        }
        return bytes;
    }

    /** The mark a jar's first run leaves beside where its archive goes: the second run writes the archive. */
    static Path seen(Path archive) {
        String name = archive.getFileName().toString();
        return archive.resolveSibling(name.substring(0, name.length() - ".jsa".length()) + ".seen");
    }

    /** Whether a JVM option chooses how the JIT compiles: the child then takes the user's compilation alone. */
    static boolean choosesCompilation(String option) {
        return option.startsWith("-XX:Tier") || option.matches("-XX:[+-]TieredCompilation")
                || option.startsWith("-XX:CompileThreshold") || option.startsWith("-XX:CICompilerCount")
                || option.equals("-Xint") || option.equals("-Xcomp") || option.equals("-Xmixed");
    }

    /** Whether a JVM option chooses the collector, the starting or young generation's size, or the heap's free share. */
    static boolean choosesHeap(String option) {
        return option.matches("-XX:[+-]Use\\w*GC") || option.startsWith("-Xms") || option.startsWith("-Xmn")
                || option.startsWith("-XX:InitialHeapSize") || option.startsWith("-XX:NewSize")
                || option.startsWith("-XX:MaxNewSize") || option.startsWith("-XX:NewRatio")
                || option.startsWith("-XX:MinHeapFreeRatio") || option.startsWith("-XX:MaxHeapFreeRatio");
    }

    /**
     * Whether the JVM options of the environment ({@code JAVA_TOOL_OPTIONS}, {@code JDK_JAVA_OPTIONS},
     * {@code _JAVA_OPTIONS}, which the child reads too) choose the heap: the child then takes them alone, as it
     * does the command line's (an option of {@link #HEAP} beside one of theirs could contradict it, a minimum free
     * share above their maximum, and the child would not start).
     */
    static boolean environmentChoosesHeap(java.util.Map<String, String> environment) {
        for (String[] options : environmentOptions(environment)) {
            for (String o : options) {
                if (choosesHeap(o)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static void keep(Path written, Path archive, boolean succeeded) {
        try {
            if (succeeded && Files.isRegularFile(written) && Files.size(written) > 0) {
                try {
                    Files.move(written, archive, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(written, archive, StandardCopyOption.REPLACE_EXISTING);
                }
                String name = archive.getFileName().toString();
                String build = name.substring(0, name.lastIndexOf('-') + 1);
                long unusedSince = System.currentTimeMillis() - UNUSED_DAYS * 86_400_000L;
                try (DirectoryStream<Path> older = Files.newDirectoryStream(archive.getParent(),
                        "classes-*.{jsa,seen}")) {
                    for (Path o : older) {
                        if (!o.equals(archive) && (o.getFileName().toString().startsWith(build)
                                || Files.getLastModifiedTime(o).toMillis() < unusedSince)) {
                            Files.deleteIfExists(o);
                        }
                    }
                }
            }
            Files.deleteIfExists(written);
        } catch (IOException | RuntimeException e) {
            // The archive only saves time: the next run writes it again.
        }
    }

    private static String crc(String s) {
        CRC32 c = new CRC32();
        c.update(s.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return Long.toHexString(c.getValue());
    }
}
