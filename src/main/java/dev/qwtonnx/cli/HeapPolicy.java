package dev.qwtonnx.cli;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/**
 * How the command-line process's heap gives memory back. G1 grows its heap with the allocation
 * rate, not with what is live, and by default keeps up to 70% of it free: a pass that copies many
 * large activations out of ORT in a short time (compensate measuring several stages at once on a
 * detector) left the heap at 3.2 GB with 0.6 GB live. With at most 30% free after a collection
 * cycle, G1 gives the rest back. Only the command line's compensate sets this: it owns its process,
 * while an application embedding the library owns its own; quantize's heap grows without the
 * collection cycles that would shrink it, and loading the management classes costs a small model's
 * run a few percent.
 */
final class HeapPolicy {
    static final String MIN_FREE = "10";
    static final String MAX_FREE = "30";

    private HeapPolicy() {
    }

    /** Applies the policy in the background (the management classes take a while to load); no-op on a JVM without them. */
    static void applyInBackground() {
        Thread t = new Thread(() -> {
            try {
                apply();
            } catch (Throwable e) {
                // The heap running out as the management classes load: the run reports its own, in one line.
            }
        }, "qwt-heap-policy");
        t.setDaemon(true);
        t.start();
    }

    static boolean apply() {
        try {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            // Min first: each setting must keep MinHeapFreeRatio <= MaxHeapFreeRatio.
            vm.setVMOption("MinHeapFreeRatio", MIN_FREE);
            vm.setVMOption("MaxHeapFreeRatio", MAX_FREE);
            return true;
        } catch (RuntimeException | LinkageError e) {
            // Another VM, or the flags set on the command line beyond what these allow: the JVM's own policy stays.
            return false;
        }
    }
}
