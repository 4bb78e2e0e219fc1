package dev.qwtonnx.pass;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
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
 */
public final class AheadTasks implements AutoCloseable {
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
            for (FutureTask<?> t : queued) {
                t.run(); // a no-op for a task already run, running or cancelled
            }
        }, name);
        worker.setDaemon(true);
        worker.start();
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
