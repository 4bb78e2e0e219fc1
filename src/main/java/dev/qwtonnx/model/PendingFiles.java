package dev.qwtonnx.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Temporary files being written right now. A kill (SIGTERM, Ctrl-C) deletes them, from the command
 * line's signal handler or else (a library's JVM) from a shutdown hook, so an interrupted run leaves
 * no temporary file behind; the output itself only appears by an atomic rename, so it is never partial.
 *
 * <p>Shutdown hooks run while the other threads go on, so creating a file and registering it happen
 * under the same lock as the sweep, and no file is created once the sweep has run.
 */
public final class PendingFiles {
    private static final Set<Path> PENDING = new LinkedHashSet<>();
    private static boolean hooked;
    private static boolean shuttingDown;

    private PendingFiles() {
    }

    /**
     * Creates an empty temporary file in {@code dir} and registers it for deletion on a kill.
     *
     * @throws IOException when the JVM is already shutting down, or the file cannot be created
     */
    public static synchronized Path createTemp(Path dir, String prefix, String suffix) throws IOException {
        if (shuttingDown) {
            throw new IOException("shutting down");
        }
        if (!hooked) {
            Runtime.getRuntime().addShutdownHook(new Thread(PendingFiles::deleteAll, "qwt-onnx-cleanup"));
            hooked = true;
        }
        Path file = Files.createTempFile(dir, prefix, suffix);
        PENDING.add(file);
        return file;
    }

    public static synchronized void remove(Path file) {
        PENDING.remove(file);
    }

    /**
     * Deletes every pending file and refuses new ones (the shutdown hook's work, and the command line's signal
     * handler's before it halts without the hooks); returns those it deleted.
     */
    public static synchronized List<Path> deleteAll() {
        shuttingDown = true;
        List<Path> deleted = new ArrayList<>();
        for (Path f : PENDING) {
            try {
                if (Files.deleteIfExists(f)) {
                    deleted.add(f);
                }
            } catch (IOException ignored) {
                // Shutting down: nothing better to do than try the next one.
            }
        }
        PENDING.clear();
        return deleted;
    }
}
