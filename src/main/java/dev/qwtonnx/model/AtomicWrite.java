package dev.qwtonnx.model;

import dev.qwtonnx.QwtException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Writes a file so that it appears whole or not at all: a temporary file in the target folder
 * (registered so that a killed JVM deletes it), synced, then renamed over the target.
 */
public final class AtomicWrite {
    private AtomicWrite() {
    }

    /** Writes a file's content to an open channel (positioned at 0). */
    @FunctionalInterface
    public interface Content {
        void writeTo(FileChannel channel) throws IOException;
    }

    /** @param what how the user calls this file in messages ("output", "report") */
    public static void write(Path out, byte[] bytes, String what) {
        write(out, what, ch -> {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
        });
    }

    /** Streams {@code content} into the file (for payloads too big for one byte array). */
    public static void write(Path out, String what, Content content) {
        Path target = out.toAbsolutePath().normalize();
        Path dir = target.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new QwtException(what + " folder does not exist: " + (dir == null ? out : dir));
        }
        if (Files.isDirectory(target)) {
            throw new QwtException(what + " path is a directory: " + out);
        }
        Path tmp = null;
        try {
            tmp = PendingFiles.createTemp(dir, "." + target.getFileName() + ".", ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                content.writeTo(ch);
                ch.force(true);
            }
            readableByAll(tmp);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            PendingFiles.remove(tmp);
            tmp = null;
        } catch (AccessDeniedException e) {
            throw new QwtException("cannot write " + what + " (permission denied): " + out);
        } catch (IOException e) {
            throw new QwtException("cannot write " + what + " " + out + ": " + e.getMessage());
        } finally {
            if (tmp != null) {
                PendingFiles.remove(tmp);
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // Best effort: the original error matters more.
                }
            }
        }
    }

    /** Temporary files are created owner-only; the finished file gets the usual rw-r--r--. */
    private static void readableByAll(Path p) {
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException | IOException e) {
            // Not a POSIX file system: keep what it gave.
        }
    }
}
