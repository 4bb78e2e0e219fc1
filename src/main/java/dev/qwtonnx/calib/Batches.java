package dev.qwtonnx.calib;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.InputSpec;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Deque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Joins samples of equal shapes along dimension 0 so that ORT runs them in one call. Samples wait
 * in a bounded window (memory O(window), not O(samples)) until a batch of one shape is full, or
 * the window is full and the largest group goes; the order is deterministic. A batch holds at most
 * {@code maxBatch} samples and, beyond one sample, at most {@link #MAX_INPUT_ELEMENTS} input
 * elements: activations (all exposed at once while calibrating) grow with the input, and a batch
 * of large images would multiply them. Batching suits statistics that do not depend on the order
 * of values (histograms, min/max, sums).
 */
public final class Batches {
    /** Input elements in one joined batch, at most (4 MiB of float input). */
    public static final long MAX_INPUT_ELEMENTS = 1 << 20;

    /**
     * Bytes of the float model's activations (every tensor the calibration session exposes) in one
     * joined run, at most, beyond one sample: 16 MiB. ORT's peak in a run grows with the batch and
     * its arena keeps the peak, two runs in flight; a batch saves only the per-run overhead, which is
     * lost in a run of that much work: an OCR recognizer's lines (86 MB a sample) run one at a time,
     * while MiniLM's sentences (2.7 MB), the angle classifier's crops (4.8 MB) and the audio models'
     * frames (under 3 MB) still join.
     */
    public static final long MAX_RUN_BYTES = 16L << 20;

    private Batches() {
    }

    /**
     * A run of several samples joined, the samples it joins, and their positions in the source's
     * order (the same data batched the same way gives the same batches: a key for what was
     * computed on one).
     */
    public record Batch(Sample sample, List<Sample> parts, List<Integer> ordinals) {
        public int count() {
            return parts.size();
        }

        /** The batch of one part of this one. */
        public Batch part(int i) {
            return new Batch(parts.get(i), List.of(parts.get(i)), List.of(ordinals.get(i)));
        }
    }

    /**
     * Whether samples of {@code bytesPerSample} (0: not known) run one at a time in a pass: where one sample's
     * activations exceed half of {@link #MAX_RUN_BYTES}, so that no two share a run ({@link #withinRunBytes}). Two
     * such runs in flight hold twice one run's activations in ORT's arenas and gain no time, as one large input
     * keeps every intra-op thread busy by itself (decision 0018 has the figures).
     */
    public static boolean runsAlone(long bytesPerSample) {
        return bytesPerSample > 0 && withinRunBytes(2, bytesPerSample) == 1;
    }

    /**
     * The largest batch {@code maxBatch} allows whose activations stay within {@link #MAX_RUN_BYTES}, for
     * samples of {@code bytesPerSample} (0: not known, {@code maxBatch}).
     */
    public static int withinRunBytes(int maxBatch, long bytesPerSample) {
        if (bytesPerSample <= 0) {
            return maxBatch;
        }
        return (int) Math.max(1, Math.min(maxBatch, MAX_RUN_BYTES / bytesPerSample));
    }

    /**
     * Whether the model lets samples be joined: every input has a dynamic (or undeclared) first
     * dimension, and each sample holds one item along it.
     */
    public static boolean batchable(List<InputSpec> inputs) {
        for (InputSpec in : inputs) {
            long[] s = in.shape();
            if (s != null && (s.length == 0 || s[0] >= 0)) {
                return false;
            }
        }
        return !inputs.isEmpty();
    }

    public static Iterator<Batch> of(Iterable<Sample> samples, int maxBatch, int window) {
        return of(samples, maxBatch, window, 0);
    }

    /**
     * As {@link #of(Iterable, int, int)}; with {@code flushAt} > 0, the samples before the first
     * {@code flushAt} are batched as if the data ended there (no batch mixes them with later ones):
     * a later pass over those samples alone finds the same batches.
     */
    public static Iterator<Batch> of(Iterable<Sample> samples, int maxBatch, int window, int flushAt) {
        if (maxBatch < 1 || window < maxBatch) {
            throw new IllegalArgumentException("need 1 <= maxBatch <= window, got " + maxBatch + ", " + window);
        }
        Iterator<Sample> in = samples.iterator();
        return new Iterator<>() {
            final Map<String, List<Sample>> waiting = new LinkedHashMap<>();
            final Map<String, List<Integer>> waitingOrdinals = new LinkedHashMap<>();
            final Deque<Batch> ready = new ArrayDeque<>();
            int buffered;
            int ordinal;

            @Override
            public boolean hasNext() {
                fill();
                return !ready.isEmpty();
            }

            @Override
            public Batch next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return ready.poll();
            }

            private void fill() {
                while (ready.isEmpty() && in.hasNext()) {
                    if (ordinal == flushAt && !waiting.isEmpty()) {
                        // As at the end of the data, one group after another in the order they began.
                        emit(waiting.keySet().iterator().next());
                        continue;
                    }
                    Sample s = in.next();
                    int at = ordinal++;
                    String key = shapeKey(s);
                    if (key == null) {
                        ready.add(new Batch(s, List.of(s), List.of(at)));
                        return;
                    }
                    List<Sample> group = waiting.computeIfAbsent(key, k -> new ArrayList<>());
                    group.add(s);
                    waitingOrdinals.computeIfAbsent(key, k -> new ArrayList<>()).add(at);
                    buffered++;
                    if (group.size() >= batchFor(s, maxBatch)) {
                        emit(key);
                    } else if (buffered >= window) {
                        String largest = null;
                        for (var e : waiting.entrySet()) {
                            if (largest == null || e.getValue().size() > waiting.get(largest).size()) {
                                largest = e.getKey();
                            }
                        }
                        emit(largest);
                    }
                }
                if (ready.isEmpty() && !waiting.isEmpty()) {
                    emit(waiting.keySet().iterator().next());
                }
            }

            private void emit(String key) {
                List<Sample> group = waiting.remove(key);
                buffered -= group.size();
                ready.add(new Batch(join(group), List.copyOf(group), List.copyOf(waitingOrdinals.remove(key))));
            }
        };
    }

    /** Samples waiting to be joined into a batch, at most. */
    static final int WINDOW = 64;

    /**
     * Runs every sample of {@code data} through {@code runner}, joined in batches of up to
     * {@code maxBatch} (1: one by one), handing each run's outputs to {@code each} with the batch
     * it covers, in the data's order, and stepping {@code progress} once per sample. Up to
     * {@link OrtRunner#concurrentRuns()} batches run at once, holding together at most as many
     * samples as one batch of {@code maxBatch} (or one per run, if more), and {@code each} runs on the calling
     * thread, one batch after another: what it computes does not depend on how many ran at once.
     * Where ORT refuses a joined batch (a graph that fixes the batch to 1 despite a dynamic input)
     * that batch runs sample by sample, and so does the rest.
     */
    public static void run(OrtRunner runner, Iterable<Sample> data, int maxBatch, Collection<String> outputs,
            Progress progress, BiConsumer<Batch, Map<String, FloatTensor>> each) {
        run(runner, data, maxBatch, 0, Batch::sample, b -> outputs, progress, each);
    }

    /**
     * As {@link #run(OrtRunner, Iterable, int, Collection, Progress, BiConsumer)}, batched as
     * {@link #of(Iterable, int, int, int)} batches with {@code flushAt}; each batch's run is fed
     * {@code inputs} of it (its joined sample, or more: asked on the thread that runs the batch, so
     * it must be safe to call from several at once) and fetches {@code outputs} of it (asked on the
     * calling thread, in the data's order).
     */
    public static void run(OrtRunner runner, Iterable<Sample> data, int maxBatch, int flushAt,
            Function<Batch, Sample> inputs, Function<Batch, Collection<String>> outputs, Progress progress,
            BiConsumer<Batch, Map<String, FloatTensor>> each) {
        run(runner, data, maxBatch, flushAt, inputs, outputs, (b, out) -> out, progress, each);
    }

    /**
     * As {@link #run(OrtRunner, Iterable, int, int, Function, Function, Progress, BiConsumer)}, each
     * run's outputs first handed to {@code inRun} on the thread that ran it (it must be safe to call
     * from several at once, and what it does must not depend on the order of batches), and what it
     * returns to {@code each}: outputs used there and dropped at once are never held waiting for
     * the batches before them (calibration's observers: activations of runs in flight that are
     * still alive at young collections get promoted, and the heap's peaks would grow with the
     * data's length).
     */
    public static void run(OrtRunner runner, Iterable<Sample> data, int maxBatch, int flushAt,
            Function<Batch, Sample> inputs, Function<Batch, Collection<String>> outputs,
            BiFunction<Batch, Map<String, FloatTensor>, Map<String, FloatTensor>> inRun,
            Progress progress, BiConsumer<Batch, Map<String, FloatTensor>> each) {
        Iterator<Batch> batches = of(data, maxBatch, Math.max(maxBatch, WINDOW), flushAt);
        int inFlight = runner.concurrentRuns();
        if (inFlight == 1) {
            runInTurn(runner, batches, inputs, outputs, inRun, progress, each);
            return;
        }
        Deque<Pending> pending = new ArrayDeque<>();
        boolean joinFailed = false;
        // Samples whose runs are in flight, at most as many as one full batch holds (or one run per thread): a
        // full batch's activations are what one run at a time could hold, so the worst case is the same.
        int cap = Math.max(maxBatch, inFlight);
        int alive = 0;
        Batch next = null;
        try {
            while (next != null || batches.hasNext() || !pending.isEmpty()) {
                while (pending.size() < inFlight && (next != null || batches.hasNext())) {
                    next = next != null ? next : batches.next();
                    if (!pending.isEmpty() && alive + next.count() > cap) {
                        break;
                    }
                    if (next.count() == 1 || !joinFailed) {
                        pending.add(Pending.start(runner, next, inputs, outputs.apply(next), inRun));
                    } else {
                        for (int i = 0; i < next.count(); i++) {
                            Batch one = next.part(i);
                            pending.add(Pending.start(runner, one, inputs, outputs.apply(one), inRun));
                        }
                    }
                    alive += next.count();
                    next = null;
                }
                Pending p = pending.poll();
                alive -= p.batch.count();
                Map<String, FloatTensor> out;
                try {
                    out = p.result();
                } catch (QwtException e) {
                    if (p.batch.count() == 1) {
                        throw e;
                    }
                    joinFailed = true;
                    for (int i = 0; i < p.batch.count(); i++) {
                        Batch one = p.batch.part(i);
                        each.accept(one, inRun.apply(one, runner.run(inputs.apply(one), outputs.apply(one))));
                        progress.step();
                    }
                    continue;
                }
                each.accept(p.batch, out);
                p.batch.parts().forEach(x -> progress.step());
            }
        } finally {
            // No run outlives the pass: the caller may close the session next, and a run still in ORT then crashes
            // the process. A run not started yet is dropped; one started is waited for.
            pending.forEach(Pending::abandon);
        }
    }

    /** The passes' runs one after another on the calling thread. */
    private static void runInTurn(OrtRunner runner, Iterator<Batch> batches, Function<Batch, Sample> inputs,
            Function<Batch, Collection<String>> outputs,
            BiFunction<Batch, Map<String, FloatTensor>, Map<String, FloatTensor>> inRun,
            Progress progress, BiConsumer<Batch, Map<String, FloatTensor>> each) {
        boolean joinFailed = false;
        while (batches.hasNext()) {
            Batch b = batches.next();
            if (b.count() > 1 && !joinFailed) {
                Map<String, FloatTensor> out = null;
                try {
                    out = runner.run(inputs.apply(b), outputs.apply(b));
                } catch (QwtException e) {
                    joinFailed = true;
                }
                if (out != null) {
                    each.accept(b, inRun.apply(b, out));
                    b.parts().forEach(p -> progress.step());
                    continue;
                }
            }
            for (int i = 0; i < b.count(); i++) {
                Batch one = b.part(i);
                each.accept(one, inRun.apply(one, runner.run(inputs.apply(one), outputs.apply(one))));
                progress.step();
            }
        }
    }

    /**
     * One batch's run, started on {@link #RUNS}. {@code claimed} is taken by whichever comes first, the
     * run starting or the pass abandoning it, and {@code finished} counts down when a started run ends:
     * a cancelled {@link Future} reports itself done at once even while its task is still in ORT, so it
     * cannot say when the session is free.
     */
    private record Pending(Batch batch, Future<Map<String, FloatTensor>> future,
            java.util.concurrent.atomic.AtomicBoolean claimed, java.util.concurrent.CountDownLatch finished) {
        static Pending start(OrtRunner runner, Batch b, Function<Batch, Sample> inputs, Collection<String> outputs,
                BiFunction<Batch, Map<String, FloatTensor>, Map<String, FloatTensor>> inRun) {
            java.util.concurrent.atomic.AtomicBoolean claimed = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.CountDownLatch finished = new java.util.concurrent.CountDownLatch(1);
            Future<Map<String, FloatTensor>> f = RUNS.submit(() -> {
                if (!claimed.compareAndSet(false, true)) {
                    return null; // abandoned before it started
                }
                try {
                    return inRun.apply(b, runner.run(inputs.apply(b), outputs));
                } finally {
                    finished.countDown();
                }
            });
            return new Pending(b, f, claimed, finished);
        }

        Map<String, FloatTensor> result() {
            try {
                return future.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new QwtException("interrupted while running sample " + batch.sample().id());
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException r) {
                    throw r;
                }
                if (e.getCause() instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException(e.getCause());
            }
        }

        /** Drops this run if it has not started, else waits until it has left ORT; its outcome is not needed. */
        void abandon() {
            if (claimed.compareAndSet(false, true)) {
                future.cancel(false);
                return;
            }
            boolean interrupted = false;
            while (true) {
                try {
                    finished.await();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Threads running the passes' ORT runs, as many at once as a pass asks: daemons, so that none
     * keeps the JVM up, and idle ones end.
     */
    private static final ExecutorService RUNS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "qwt-ort-run");
        t.setDaemon(true);
        return t;
    });

    /** How many samples like {@code s} one batch may hold. */
    static int batchFor(Sample s, int maxBatch) {
        long elements = 0;
        for (HostTensor t : s.inputs().values()) {
            elements += t.numel();
        }
        return (int) Math.max(1, Math.min(maxBatch, MAX_INPUT_ELEMENTS / Math.max(1, elements)));
    }

    /** The shapes and types of a sample's inputs, or null when one has no first dimension of 1. */
    private static String shapeKey(Sample s) {
        StringBuilder b = new StringBuilder();
        for (var e : s.inputs().entrySet()) {
            long[] shape = e.getValue().shape();
            if (shape.length == 0 || shape[0] != 1) {
                return null;
            }
            b.append(e.getKey()).append(':').append(e.getValue().type()).append(Arrays.toString(shape)).append(';');
        }
        return b.toString();
    }

    /** The samples' tensors concatenated along dimension 0 (row-major: their bytes one after another). */
    static Sample join(List<Sample> group) {
        if (group.size() == 1) {
            return group.get(0);
        }
        Map<String, HostTensor> joined = new LinkedHashMap<>();
        for (String name : group.get(0).inputs().keySet()) {
            HostTensor first = group.get(0).inputs().get(name);
            long[] shape = first.shape();
            shape[0] = group.size();
            ByteBuffer bytes = ByteBuffer.allocate(Math.toIntExact(first.bytes().remaining() * (long) group.size()));
            for (Sample s : group) {
                bytes.put(s.inputs().get(name).bytes());
            }
            bytes.flip();
            joined.put(name, new HostTensor(first.type(), shape, bytes));
        }
        return new Sample(group.get(0).id() + " (+" + (group.size() - 1) + " more)", joined);
    }
}
