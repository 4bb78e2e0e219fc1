package dev.qwtonnx.ort;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import java.util.Map;

/**
 * ORT's usage telemetry, off in the command line's runs unless the user has chosen.
 *
 * <p>ORT 1.29's native library, on Linux and macOS, starts Microsoft's 1DS telemetry client when its environment
 * is made: it keeps a device id and a queue of events under {@code $XDG_CACHE_HOME/Microsoft/DeveloperTools}
 * (else {@code ~/.cache/...}), uploads them when it can, and leaves an empty {@code mat-debug-PID.log} in
 * {@code $TMPDIR} (else {@code /tmp}) for every process. Its events describe the machine (OS, CPU model, memory)
 * and, for a sampled share of sessions, the model (file name, producer, graph and weight hashes, metadata). A run
 * makes tens of sessions of the user's model; a compiler of the user's models does not report on them to a third
 * party unasked, so the command line sets ORT's own switch, {@code ORT_DISABLE_TELEMETRY=1} (and the name later
 * ORT releases read), in the process that runs ORT. A variable read at start is what stops the client, the device
 * id and the file (ORT also stops them where a CI system's variables are set): the runtime call
 * ({@link OrtEnvironment#setTelemetry}) comes after the environment exists and silences only the per-session
 * events, which is what a run kept in one JVM gets. A user who sets either variable
 * keeps their choice ({@code ORT_DISABLE_TELEMETRY=0} turns it on). In a library the host's process owns ORT's
 * environment and decides.
 */
public final class Telemetry {
    /** ORT 1.29's switch: "1" or "true" disables the client before it starts, "0" leaves it on. */
    static final String SWITCH = "ORT_DISABLE_TELEMETRY";
    /** The switch ORT's later releases read ("1", "true", "yes", "on" disable). */
    static final String LATER_SWITCH = "ORT_TELEMETRY_DISABLED";

    private Telemetry() {
    }

    /** Whether the user's environment sets either of ORT's switches, to whatever value. */
    static boolean chosen(Map<String, String> environment) {
        return environment.containsKey(SWITCH) || environment.containsKey(LATER_SWITCH);
    }

    /** The variables that turn ORT's telemetry off in a process started with {@code inherited}: none if the user chose. */
    public static Map<String, String> offUnlessChosen(Map<String, String> inherited) {
        return chosen(inherited) ? Map.of() : Map.of(SWITCH, "1", LATER_SWITCH, "1");
    }

    /**
     * In a process started without the switch (a run kept in one JVM): ORT's per-session events off, unless the
     * user chose. The client ORT has already started stays; this is all ORT allows once its environment exists.
     */
    static void offInProcess(OrtEnvironment env, Map<String, String> environment) {
        if (chosen(environment)) {
            return;
        }
        try {
            env.setTelemetry(false);
        } catch (OrtException | RuntimeException e) {
            // Telemetry is ORT's business: a refusal here changes nothing the run does.
        }
    }
}
