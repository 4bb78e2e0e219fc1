package dev.qwtonnx.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A writer that is still running when the shutdown hook sweeps (hooks run beside the other
 * threads): sweeps, then tries to create a temporary file in the folder given, and says whether
 * it was refused. Runs in its own JVM, since the sweep is for good.
 */
public final class SweepThenCreate {
    private SweepThenCreate() {
    }

    public static void main(String[] args) {
        PendingFiles.deleteAll();
        try {
            System.out.println("created " + PendingFiles.createTemp(Path.of(args[0]), ".o.onnx.", ".tmp"));
        } catch (IOException e) {
            System.out.println("refused");
        }
    }
}
