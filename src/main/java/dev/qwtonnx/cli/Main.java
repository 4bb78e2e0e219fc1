package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import java.io.PrintWriter;
import picocli.CommandLine;

/**
 * {@code java -jar qwt-onnx.jar [quantize] in.onnx out.onnx --calib DIR}. Exit codes: 0 success,
 * 2 a user error (one line on standard error), 1 an internal error.
 */
public final class Main {
    public static final int USER_ERROR = 2;
    public static final int INTERNAL_ERROR = 1;

    private Main() {
    }

    public static void main(String[] args) {
        // A signal ends the run without the JVM's shutdown hooks (see Signals); ORT from its cached native library,
        // started while the options are parsed and the model is read. Neither for a run that only prints help or
        // the version.
        if (!Launcher.onlyPrints(args)) {
            Signals.install();
            dev.qwtonnx.ort.OrtStartup.startInBackground(asksVerbose(args));
            if (args[0].equals("compensate")) {
                // Only compensate's passes grow the heap this way; elsewhere loading the management classes
                // costs a small model's run a few percent and gives nothing back.
                HeapPolicy.applyInBackground();
            }
        }
        int code = run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true));
        if (code == 0 && System.getProperty(Launcher.ARCHIVING_PROPERTY) != null) {
            loadForArchive();
        }
        // Nothing may be inside ORT when its shutdown hook releases its environment: a failed run's work ahead, or
        // sessions closing in the background.
        dev.qwtonnx.pass.AheadTasks.drain();
        dev.qwtonnx.calib.OrtRunner.awaitBackgroundCloses();
        System.exit(code);
    }

    /**
     * Loads what other runs of the tool load and this one may not have, before the JVM writes its class archive as
     * it exits ({@link Launcher}): the archive holds only the classes the run that writes it loaded, and a
     * report's (FreeMarker's directives, the charts, Jackson's serializers) missing from it cost every later run
     * that writes a report 0.3 s. Every class of the tool itself is loaded too (the other commands'); the
     * libraries' only as far as the report needs them. Best effort: the command's work is done.
     */
    static void loadForArchive() {
        try {
            dev.qwtonnx.verify.Report sample = dev.qwtonnx.verify.ReportSample.report();
            dev.qwtonnx.verify.ReportWriter.html(sample);
        } catch (RuntimeException | LinkageError e) {
            // Only time is at stake.
        }
        java.security.CodeSource source = Main.class.getProtectionDomain().getCodeSource();
        if (source == null) {
            return;
        }
        try (java.util.jar.JarFile jar = new java.util.jar.JarFile(new java.io.File(source.getLocation().toURI()))) {
            ClassLoader loader = Main.class.getClassLoader();
            for (java.util.Enumeration<java.util.jar.JarEntry> e = jar.entries(); e.hasMoreElements();) {
                String name = e.nextElement().getName();
                if (name.startsWith("dev/qwtonnx/") && name.endsWith(".class")) {
                    try {
                        Class.forName(name.substring(0, name.length() - ".class".length()).replace('/', '.'), false,
                                loader);
                    } catch (ClassNotFoundException | LinkageError ignored) {
                        // A class that does not load is not archived; its run loads it as before.
                    }
                }
            }
        } catch (java.io.IOException | java.net.URISyntaxException | RuntimeException e) {
            // Only time is at stake.
        }
    }

    /** Whether the raw arguments ask for --verbose, before (or without) picocli's parse. */
    private static boolean asksVerbose(String[] args) {
        return java.util.Arrays.asList(args).contains("--verbose");
    }

    /** Runs the CLI without exiting the JVM (tests call this). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        String[] effective = args;
        if (args.length == 0 || !isSubcommand(args[0])) {
            // The main job needs no sub-command word: `qwt-onnx in.onnx out.onnx ...` means quantize.
            effective = new String[args.length + 1];
            effective[0] = "quantize";
            System.arraycopy(args, 0, effective, 1, args.length);
            if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h") || args[0].equals("--version")
                    || args[0].equals("-V"))) {
                effective = args;
            }
        }
        CommandLine cl = commandLine(out, err, effective.length == 0 ? "" : effective[0]);
        try {
            return cl.execute(effective);
        } catch (Throwable t) {
            // picocli hands only Exceptions to the handler; an Error (out of memory, stack overflow)
            // still gets one line and exit code 1, and the stack trace only with --verbose.
            boolean verbose = asksVerbose(args);
            err.println("qwt-onnx: internal error: " + oneLine(String.valueOf(t))
                    + (t instanceof OutOfMemoryError ? " (give the JVM more memory, e.g. java -Xmx8g -jar ...)" : ""));
            if (verbose) {
                t.printStackTrace(err);
            } else {
                err.println("(run with --verbose for the stack trace)");
            }
            return INTERNAL_ERROR;
        }
    }

    private static boolean isSubcommand(String a) {
        return a.equals("quantize") || a.equals("verify") || a.equals("compensate") || a.equals("help");
    }

    /**
     * The command line for a run whose first word is {@code word}: with that subcommand alone where it names one, else
     * (help, the version, a mistake) with them all. picocli builds a command's model from its annotations by
     * reflection, interpreted at start-up, and building the other two commands' options took a small model's run
     * tens of milliseconds for nothing.
     */
    static CommandLine commandLine(PrintWriter out, PrintWriter err, String word) {
        CommandLine cl = new CommandLine(new TopCommand());
        boolean all = !isSubcommand(word) || word.equals("help");
        if (all || word.equals("quantize")) {
            cl.addSubcommand(new QuantizeCommand());
        }
        if (all || word.equals("verify")) {
            cl.addSubcommand(new VerifyCommand());
        }
        if (all || word.equals("compensate")) {
            cl.addSubcommand(new CompensateCommand());
        }
        if (all) {
            cl.addSubcommand(new CommandLine.HelpCommand());
        }
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler((ex, a) -> {
            err.println("qwt-onnx: " + ex.getMessage());
            err.println("Try 'qwt-onnx --help' for usage.");
            return USER_ERROR;
        });
        cl.setExecutionExceptionHandler((ex, command, parseResult) -> {
            boolean verbose = parseResult.subcommand() != null && parseResult.subcommand().hasMatchedOption("--verbose");
            Throwable t = ex;
            if (t instanceof QwtException) {
                err.println("qwt-onnx: error: " + oneLine(t.getMessage()));
                if (verbose) {
                    t.printStackTrace(err);
                }
                return USER_ERROR;
            }
            err.println("qwt-onnx: internal error: " + oneLine(String.valueOf(t)));
            if (verbose) {
                t.printStackTrace(err);
            } else {
                err.println("(run with --verbose for the stack trace)");
            }
            return INTERNAL_ERROR;
        });
        return cl;
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ');
    }

    @CommandLine.Command(name = "qwt-onnx", mixinStandardHelpOptions = true, versionProvider = Version.class,
            description = "Post-training INT8 quantization of ONNX models with channel-wise affine compensation.")
    // The subcommands are added by commandLine, only the one a run asks for.
    static final class TopCommand implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(spec.commandLine().getOut());
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"qwt-onnx " + dev.qwtonnx.Version.version()};
        }
    }
}
