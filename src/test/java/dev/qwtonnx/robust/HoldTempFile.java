package dev.qwtonnx.robust;

import dev.qwtonnx.model.PendingFiles;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A stand-in for a run killed while {@code ModelIO.save} writes its temporary file: creates and
 * registers one in the folder given, says "ready <file>", then waits to be killed.
 */
public final class HoldTempFile {
    private HoldTempFile() {
    }

    public static void main(String[] args) throws Exception {
        Path tmp = PendingFiles.createTemp(Path.of(args[0]), ".o.onnx.", ".tmp");
        Files.write(tmp, new byte[4096]);
        System.out.println("ready " + tmp);
        System.out.flush();
        Thread.sleep(120_000);
    }
}
