package dev.qwtonnx.model;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * Frees direct buffers as soon as they are done with. A direct buffer's memory is otherwise only
 * given back when a garbage collection finds the buffer unreachable, and with hundreds of MB of
 * serialized model per ORT session and little heap traffic that can be long after (every session
 * of a big model would add its copy). Uses {@code sun.misc.Unsafe.invokeCleaner} (module
 * jdk.unsupported, as Netty and Lucene do); where it is missing, freeing is left to the collector.
 */
public final class DirectMemory {
    private static final Object UNSAFE;
    private static final Method INVOKE_CLEANER;

    static {
        Object unsafe = null;
        Method invoke = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            invoke = c.getMethod("invokeCleaner", ByteBuffer.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Left to the garbage collector.
        }
        UNSAFE = unsafe;
        INVOKE_CLEANER = invoke;
    }

    private DirectMemory() {
    }

    /** Frees the buffer's memory now; it must not be used afterwards (nor any view of it). */
    public static void free(ByteBuffer b) {
        if (INVOKE_CLEANER == null || !b.isDirect()) {
            return;
        }
        try {
            INVOKE_CLEANER.invoke(UNSAFE, b);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Left to the garbage collector.
        }
    }

    /** Whether {@link #free} frees at once (false: the collector will). */
    public static boolean freesAtOnce() {
        return INVOKE_CLEANER != null;
    }
}
