package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where the payloads memory-mapped on load came from: file, offset and length, by the identity of
 * their ByteString. A tensor that no pass has changed keeps the very ByteString it was loaded with,
 * so a session over it can have ONNX Runtime read (and map) the same bytes from the same file
 * instead of being handed a copy. Held weakly: a payload no model uses any more is forgotten.
 */
public final class MappedPayloads {
    /** A mapped payload's place in its file (a real path). */
    public record Source(Path file, long offset, long length) {
    }

    private static final ReferenceQueue<ByteString> GONE = new ReferenceQueue<>();
    private static final Map<Key, Source> SOURCES = new ConcurrentHashMap<>();

    private MappedPayloads() {
    }

    static void record(ByteString payload, Source source) {
        expunge();
        SOURCES.put(new Key(payload, GONE), source);
    }

    /** The file the payload was mapped from, or null when it was not (or is no longer known). */
    public static Source source(ByteString payload) {
        expunge();
        return SOURCES.get(new Key(payload, null));
    }

    private static void expunge() {
        for (Object k; (k = GONE.poll()) != null; ) {
            SOURCES.remove(k);
        }
    }

    /** A weak key compared by identity (ByteString's own equals would compare gigabytes). */
    private static final class Key extends WeakReference<ByteString> {
        private final int hash;

        Key(ByteString payload, ReferenceQueue<ByteString> queue) {
            super(payload, queue);
            hash = System.identityHashCode(payload);
        }

        @Override
        public int hashCode() {
            return hash;
        }

        @Override
        public boolean equals(Object o) {
            if (this == o) {
                return true;
            }
            Object mine = get();
            return o instanceof Key k && mine != null && mine == k.get();
        }
    }
}
