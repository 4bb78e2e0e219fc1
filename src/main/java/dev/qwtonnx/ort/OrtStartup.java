package dev.qwtonnx.ort;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;

/**
 * ORT's start-up (loading its native library, making its environment) on a thread of its own at the
 * start of a command-line run, so that it overlaps parsing the options and reading the model and the
 * samples (together about 0.2 s each, on two cores). The first stage that needs ORT calls
 * {@link OrtEnvironment#getEnvironment()}, which waits for this one if it is not done.
 */
public final class OrtStartup {
    private OrtStartup() {
    }

    /** Whether the command line asked for ORT's log lines (--verbose); false in a library. */
    private static volatile boolean verbose;

    /**
     * The level of ORT's log lines that reach stderr from a session: errors with --verbose, else none. An error ORT
     * logs is also the message of the exception the tool reports (or a session made ahead whose result a failed
     * run no longer reads: a user error's one line then came with two lines of ORT's own).
     */
    static OrtLoggingLevel sessionLogLevel() {
        return verbose ? OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR : OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
    }

    /**
     * Points ORT at its cached libraries ({@link NativeLibraryCache}) and starts it on a daemon thread. ORT's own
     * log lines reach stderr only with {@code verbose}: at its default level it prints warnings about the
     * user's model (an unused initializer, say) and errors of runs the tool retries another way (a joined batch
     * a graph refuses); every failure the user must see is reported by the tool, with ORT's message in it. ORT's
     * telemetry is turned off as far as a process already started allows ({@link Telemetry}).
     */
    public static void startInBackground(boolean verbose) {
        OrtStartup.verbose = verbose;
        NativeLibraryCache.install();
        Thread t = new Thread(() -> {
            try {
                OrtEnvironment env = OrtEnvironment.getEnvironment(verbose ? OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING
                        : OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
                Telemetry.offInProcess(env, System.getenv());
            } catch (Throwable e) {
                // The first stage that needs ORT fails again with the same error, and reports it.
            }
        }, "qwt-onnx-ort-startup");
        t.setDaemon(true);
        t.start();
    }
}
