package dev.qwtonnx.pass;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AheadTasksTest {
    @Test
    void aTaskTheThreadHasNotReachedRunsInTheCaller() {
        try (AheadTasks ahead = new AheadTasks("test-ahead")) {
            Supplier<String> who = ahead.submit(() -> Thread.currentThread().getName());
            // Not started: nobody else will run it.
            assertEquals(Thread.currentThread().getName(), who.get());
        }
    }

    @Test
    void tasksRunOnTheThreadInOrderAndOnceWhoeverAsks() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        List<Integer> order = java.util.Collections.synchronizedList(new ArrayList<>());
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (AheadTasks ahead = new AheadTasks("test-ahead")) {
            Supplier<String> first = ahead.submit(() -> {
                started.countDown();
                release.await(10, TimeUnit.SECONDS);
                order.add(0);
                return Thread.currentThread().getName();
            });
            List<Supplier<Integer>> rest = new ArrayList<>();
            for (int i = 1; i <= 20; i++) {
                int k = i;
                rest.add(ahead.submit(() -> {
                    runs.incrementAndGet();
                    order.add(k);
                    return k * k;
                }));
            }
            ahead.start();
            started.await(10, TimeUnit.SECONDS);
            // The last task, asked for while the thread is held on the first: run here, once.
            assertEquals(400, rest.get(19).get());
            release.countDown();
            assertEquals("test-ahead", first.get(), "the thread ran the first task");
            // Several threads asking at once still run each task once, with the same results.
            List<Thread> askers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                Thread a = new Thread(() -> rest.forEach(Supplier::get));
                askers.add(a);
                a.start();
            }
            for (Thread a : askers) {
                a.join();
            }
            for (int i = 1; i <= 20; i++) {
                assertEquals(i * i, rest.get(i - 1).get());
            }
            assertEquals(20, runs.get(), "each task ran once");
            assertEquals(20, order.get(0), "the caller ran the last task before the thread ran any");
        }
    }

    @Test
    void whatATaskThrowsIsThrownToWhoeverAsks() {
        IllegalArgumentException bad = new IllegalArgumentException("bad weight");
        OutOfMemoryError oom = new OutOfMemoryError("heap");
        try (AheadTasks ahead = new AheadTasks("test-ahead")) {
            Supplier<Object> failing = ahead.submit(() -> {
                throw bad;
            });
            Supplier<Object> exhausted = ahead.submit(() -> {
                throw oom;
            });
            ahead.start();
            assertSame(bad, assertThrows(IllegalArgumentException.class, failing::get));
            assertSame(oom, assertThrows(OutOfMemoryError.class, exhausted::get));
        }
    }

    @Test
    void closedTasksThatNeverRanAreNotRun() {
        AtomicInteger runs = new AtomicInteger();
        Supplier<Integer> late;
        try (AheadTasks ahead = new AheadTasks("test-ahead")) {
            late = ahead.submit(runs::incrementAndGet);
        }
        assertThrows(IllegalStateException.class, late::get);
        assertEquals(0, runs.get());
    }

    /**
     * A process drained before it exits (a failed run's error printed) while a task runs waits for that
     * task and runs none of the queued ones: a task inside ORT at the exit crashed the JVM (exit code 134
     * in place of the run's 2, seen on a model with no layer to quantize while ORT made its float graph).
     * In a JVM of its own, as the drain cancels every instance's tasks.
     */
    @Test
    void theProcessExitsAfterTheRunningTaskAndWithoutTheQueuedOnes(@TempDir Path dir)
            throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"), ExitsWhileATaskRuns.class.getName(),
                dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), out);
        assertEquals(2, p.exitValue(), out);
        assertTrue(Files.exists(dir.resolve("running-done")), "the exit waited for the running task: " + out);
        assertFalse(Files.exists(dir.resolve("queued-ran")), "the queued task was cancelled: " + out);
    }

    /** Starts two tasks and, while the first runs (it ends 0.5 s later), drains and exits with code 2, as the command line does. */
    static final class ExitsWhileATaskRuns {
        public static void main(String[] args) throws Exception {
            Path dir = Path.of(args[0]);
            CountDownLatch started = new CountDownLatch(1);
            AheadTasks ahead = new AheadTasks("test-ahead");
            ahead.submit(() -> {
                started.countDown();
                Thread.sleep(500);
                return Files.writeString(dir.resolve("running-done"), "");
            });
            ahead.submit(() -> Files.writeString(dir.resolve("queued-ran"), ""));
            ahead.start();
            started.await();
            AheadTasks.drain();
            System.exit(2);
        }
    }
}
