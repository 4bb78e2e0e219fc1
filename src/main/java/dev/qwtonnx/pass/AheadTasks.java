package dev.qwtonnx.pass;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.function.Supplier;

/**
 * Work done ahead of need on one daemon thread, in the order it was submitted: while calibration
 * keeps ORT's threads busy, the cores are not fully busy, and work that depends on the weights
 * alone can take what is left. Whoever needs a result first runs the work itself if
 * the thread has not reached it, and waits for it only while the thread is running it: a result is
 * never later than without the thread. The results do not depend on who ran them.
 *
 * <p>A task may be inside ORT (making a session) when a failed run's process exits: ORT's own shutdown
 * hook releases its environment under the thread still using it, and the JVM crashes (a SIGSEGV, exit
 * code 134 and an hs_err file in the user's directory instead of exit code 2). Shutdown hooks run
 * concurrently, so one of ours cannot wait before ORT's: the command line calls {@link #drain()} before
 * it exits.
 */
public final class AheadTasks implements AutoCloseable {
    /** Longest wait at exit for a running task, so that a task hung in native code cannot hang the exit. */
    static final long DRAIN_MILLIS = 30_000;

    /** The instances whose thread is running. */
    private static final Set<AheadTasks> LIVE = ConcurrentHashMap.newKeySet();

    private final List<FutureTask<?>> tasks = new ArrayList<>();
    private final String name;
    private Thread worker;

    public AheadTasks(String name) {
        this.name = name;
    }

    /** Queues {@code work}; the supplier returns its result, running it first if nobody has. */
    public synchronized <T> Supplier<T> submit(Callable<T> work) {
        if (worker != null) {
            throw new IllegalStateException("tasks are submitted before start()");
        }
        FutureTask<T> task = new FutureTask<>(work);
        tasks.add(task);
        return () -> result(task);
    }

    /** Starts the thread on the queued tasks (none: no thread). */
    public synchronized void start() {
        if (worker != null || tasks.isEmpty()) {
            return;
        }
        List<FutureTask<?>> queued = List.copyOf(tasks);
        worker = new Thread(() -> {
            try {
                for (FutureTask<?> t : queued) {
                    t.run(); // a no-op for a task already run, running or cancelled
                }
            } finally {
                LIVE.remove(this);
            }
        }, name);
        worker.setDaemon(true);
        LIVE.add(this);
        worker.start();
    }

    /**
     * Cancels every live instance's tasks not started and waits, up to {@link #DRAIN_MILLIS} in all, for the running
     * ones: for a process about to exit (the tasks of a run in progress are cancelled too).
     */
    public static void drain() {
        List<AheadTasks> live = List.copyOf(LIVE);
        live.forEach(AheadTasks::close);
        long deadline = System.nanoTime() + DRAIN_MILLIS * 1_000_000;
        for (AheadTasks a : live) {
            try {
                a.await(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Waits up to {@code millis} for the thread to end (at once where there is none). */
    void await(long millis) throws InterruptedException {
        Thread w;
        synchronized (this) {
            w = worker;
        }
        if (w != null) {
            w.join(millis);
        }
    }

    /**
     * Cancels what has not started (a failed run no longer needs it); a task running finishes on
     * the daemon thread, its result unused.
     */
    @Override
    public synchronized void close() {
        for (FutureTask<?> t : tasks) {
            t.cancel(false);
        }
    }

    private static <T> T result(FutureTask<T> task) {
        task.run();
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return task.get();
                } catch (InterruptedException e) {
                    interrupted = true; // the result is needed: wait on, and keep the interrupt for the caller
                }
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(cause);
        } catch (CancellationException e) {
            throw new IllegalStateException("a task was needed after its tasks were closed", e);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
