package dev.qwtonnx.cli;

import dev.qwtonnx.model.PendingFiles;
import java.util.List;
import sun.misc.Signal;

/**
 * How the command line ends on a signal (Ctrl-C, a kill, a closed terminal): its temporary files deleted,
 * then the JVM halted without running its shutdown hooks, with exit code 128 + the signal's number, as a
 * shell reports a process the signal ended.
 *
 * <p>The hooks are skipped because ORT's Java binding registers one that releases ORT's environment, and
 * hooks run while the run's threads go on inside ORT, making or running a session: killed during a run,
 * the JVM crashed on a SIGSEGV in ORT on about one kill in four (exit code 134, and an hs_err file left in
 * the user's directory). Hooks run concurrently, so no hook of ours could hold ORT's back
 * (microsoft/onnxruntime#31352). The output itself only ever appears by an atomic rename, so a halt
 * leaves none partial.
 */
final class Signals {
    /** The signals a JVM turns into an orderly exit by default. */
    static final List<String> STOPPING = List.of("INT", "TERM", "HUP");

    private Signals() {
    }

    /**
     * Handles {@link #STOPPING} in this process from now on; a signal the platform does not know (HUP on
     * Windows) or that the JVM was started ignoring (Ctrl-C for a background job) keeps its way.
     */
    static void install() {
        for (String name : STOPPING) {
            try {
                Signal signal = new Signal(name);
                Signal.handle(signal, Signals::stop);
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                // Not a signal here, or one the JVM keeps: its default stands.
            }
        }
    }

    private static void stop(Signal signal) {
        PendingFiles.deleteAll();
        Runtime.getRuntime().halt(128 + signal.getNumber());
    }
}
