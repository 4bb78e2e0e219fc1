package dev.qwtonnx.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Temporary files being written right now. A kill (SIGTERM, Ctrl-C) runs the JVM's shutdown hooks,
 * and one of them deletes these, so an interrupted run leaves no temporary file behind; the output
 * itself only appears by an atomic rename, so it is never partial.
 */
public final class PendingFiles {
    private static final Set<Path> PENDING = new LinkedHashSet<>();
    private static boolean hooked;

    private PendingFiles() {
    }

    public static synchronized void add(Path file) {
        if (!hooked) {
            Runtime.getRuntime().addShutdownHook(new Thread(PendingFiles::deleteAll, "qwt-onnx-cleanup"));
            hooked = true;
        }
        PENDING.add(file);
    }

    public static synchronized void remove(Path file) {
        PENDING.remove(file);
    }

    /** Deletes every pending file (the shutdown hook's work); returns those it deleted. */
    static List<Path> deleteAll() {
        List<Path> files;
        synchronized (PendingFiles.class) {
            files = new ArrayList<>(PENDING);
            PENDING.clear();
        }
        List<Path> deleted = new ArrayList<>();
        for (Path f : files) {
            try {
                if (Files.deleteIfExists(f)) {
                    deleted.add(f);
                }
            } catch (IOException ignored) {
                // Shutting down: nothing better to do than try the next one.
            }
        }
        return deleted;
    }
}
