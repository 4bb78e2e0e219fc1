package dev.qwtonnx.calib;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.DirectMemory;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtSessions;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One ORT session over a model, created from bytes (never a temporary file; OrtSessions hands the
 * weights of models over 2 GB over in memory), optionally with intermediate tensors exposed as
 * extra outputs so that calibration can observe them.
 */
public final class OrtRunner implements AutoCloseable {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSessions.Handle handle;
    private final long modelBytes;
    private final OrtSession session;
    private final Set<String> inputNames;
    /** Inputs fed to every run from tensors made once (see {@link #fixing}); empty on a runner that owns its session. */
    private final Map<String, OnnxTensor> fixed;
    private final List<ByteBuffer> fixedBuffers;
    private final boolean ownsSession;
    /** Whether a pass over data runs one sample at a time on this session ({@link #oneRunAtATime}). */
    private volatile boolean alone;

    public OrtRunner(Model model, Collection<String> exposed) {
        this(model, exposed, OrtSession.SessionOptions.OptLevel.ALL_OPT);
    }

    public OrtRunner(Model model, Collection<String> exposed, OrtSession.SessionOptions.OptLevel level) {
        this(model, exposed, level, true);
    }

    /**
     * A session for passes over calibration data: its idle intra-op threads wait instead of
     * spinning. A pass is many short runs; on a busy machine, threads spinning between them take
     * the cores from the threads at work, and a pass takes several times as long. Latency is
     * measured with ORT's default.
     */
    public static OrtRunner forPasses(Model model, Collection<String> exposed) {
        return new OrtRunner(model, exposed, OrtSession.SessionOptions.OptLevel.ALL_OPT, false);
    }

    /**
     * A session for a pass of {@code runs} runs, as {@link #forPasses(Model, Collection)} makes it, its weights not
     * prepacked up to {@link #PREPACK_FROM_RUNS} runs, and with {@code onGrid} as {@link #of} takes it. Prepacking a
     * float encoder's MatMul weights adds about a fifth of a second to its session's start and takes a few
     * milliseconds off each run of a sentence, so it pays only over many runs. Two models compared in one pass get
     * sessions made alike, so that a model equal to the float one measures equal (prepacked and unpacked kernels
     * sum in another order).
     */
    public static OrtRunner forPasses(Model model, Collection<String> exposed, int runs, boolean onGrid) {
        return new OrtRunner(model, exposed, OrtSession.SessionOptions.OptLevel.ALL_OPT, false, runs >= PREPACK_FROM_RUNS,
                onGrid);
    }

    /** Runs of a pass from which prepacking a session's weights pays for itself (see the method above). */
    public static final int PREPACK_FROM_RUNS = 64;

    /**
     * Runs of one session up to which {@link #forFewRuns} is the sooner: measured at 4 (a layer's sensitivity on
     * a CNN) and 8 (the per-layer fidelity); at 16 (MiniLM's sensitivity, one layer quantized) prepacking paid.
     */
    public static final int FEW_RUNS = 8;

    /**
     * A session for a few runs ({@link #FEW_RUNS} at most): no weight prepacking, which costs more at the session's
     * start (half a second on MiniLM's measuring graph) than it saves in a few runs (a few milliseconds each). The
     * graph is optimized as usual: unoptimized, its runs would lose more than prepacking costs at the start.
     */
    public static OrtRunner forFewRuns(Model model, Collection<String> exposed) {
        return new OrtRunner(model, exposed, OrtSession.SessionOptions.OptLevel.ALL_OPT, false, false);
    }

    /**
     * A session as {@link #forPasses} makes it ({@code forPasses}) or as the constructor does, and with
     * {@code onGrid} one that runs each Q/DQ pair as written, ORT's QDQ fusion off: the arithmetic of the
     * quantization grid, the same on every CPU. A fused integer kernel's is not: on x86 without VNNI,
     * ORT's u8·s8 kernels add two products in 16 bits, which saturates for full-range 8-bit weights
     * (where compensation measures on the grid: {@code cwac.Grid}).
     */
    public static OrtRunner of(Model model, Collection<String> exposed, boolean forPasses, boolean onGrid) {
        return new OrtRunner(model, exposed, OrtSession.SessionOptions.OptLevel.ALL_OPT, !forPasses, true, onGrid);
    }

    private OrtRunner(Model model, Collection<String> exposed, OrtSession.SessionOptions.OptLevel level, boolean timed) {
        this(model, exposed, level, timed, true);
    }

    private OrtRunner(Model model, Collection<String> exposed, OrtSession.SessionOptions.OptLevel level, boolean timed,
            boolean prepack) {
        this(model, exposed, level, timed, prepack, false);
    }

    /**
     * A session; {@code timed} where its runs are timed (latency), with ORT's defaults: threads that spin between
     * runs and a memory pattern. Passes and measuring runs get neither.
     */
    private OrtRunner(Model model, Collection<String> exposed, OrtSession.SessionOptions.OptLevel level, boolean timed,
            boolean prepack, boolean grid) {
        Model m = exposed.isEmpty() ? model : exposeOutputs(model, exposed);
        ModelChecker.checkForRuntime(m); // native code must never see a malformed model: it can abort the JVM
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setOptimizationLevel(level);
            opts.setIntraOpNumThreads(intraOpThreads());
            if (!timed) {
                opts.addConfigEntry("session.intra_op.allow_spinning", "0");
            }
            if (!prepack) {
                opts.addConfigEntry("session.disable_prepacking", "1");
            }
            if (grid) {
                opts.addConfigEntry("session.disable_quant_qdq", "1");
            }
            if (!timed) {
                // Runs that are not timed plan no memory pattern: ORT otherwise lays out one block for all of a
                // run's activations for each new set of input shapes it meets, and keeps it in its arena, where a
                // pass over images or sentences of many sizes meets many, and the blocks add up to a sixth of a
                // detector's peak RSS (decision 0018). Timed runs keep ORT's default, which is what a user's
                // session has.
                opts.setMemoryPatternOptimization(false);
            }
            this.handle = OrtSessions.create(m, opts);
            SESSIONS.incrementAndGet();
            this.modelBytes = m.serializedSize();
            this.session = handle.session();
            this.inputNames = session.getInputNames();
            this.fixed = Map.of();
            this.fixedBuffers = List.of();
            this.ownsSession = true;
        } catch (OrtException e) {
            throw new QwtException("ONNX Runtime cannot load the model: " + OrtSessions.firstLine(e.getMessage()), e);
        }
    }

    private OrtRunner(OrtRunner of, Map<String, OnnxTensor> fixed, List<ByteBuffer> buffers) {
        this.handle = of.handle;
        this.modelBytes = of.modelBytes;
        this.session = of.session;
        this.inputNames = of.inputNames;
        this.fixed = fixed;
        this.fixedBuffers = buffers;
        this.ownsSession = false;
        this.alone = of.alone;
    }

    /**
     * A runner on this one's session that feeds {@code values} to every run beside the sample's inputs,
     * made into ORT tensors once rather than on each run (a compensation's evaluator feeds a few hundred
     * parameters to thousands of runs). Closing it frees those tensors only; the session stays this one's.
     */
    public OrtRunner fixing(Map<String, HostTensor> values) {
        Map<String, OnnxTensor> tensors = new HashMap<>();
        List<ByteBuffer> buffers = new ArrayList<>();
        try {
            for (Map.Entry<String, HostTensor> e : values.entrySet()) {
                tensors.put(e.getKey(), e.getValue().toOnnx(env, buffers::add));
            }
        } catch (OrtException e) {
            tensors.values().forEach(OnnxTensor::close);
            buffers.forEach(DirectMemory::free);
            throw new QwtException("ONNX Runtime cannot take the fixed inputs: " + OrtSessions.firstLine(e.getMessage()), e);
        }
        return new OrtRunner(this, Map.copyOf(tensors), List.copyOf(buffers));
    }

    /**
     * ORT's intra-op threads: all cores, or the JVM property {@code qwt.ort.threads}. The output
     * does not depend on it (a test checks the bytes), only the speed does.
     */
    public static int intraOpThreads() {
        return Math.max(1, Integer.getInteger("qwt.ort.threads", Runtime.getRuntime().availableProcessors()));
    }

    /**
     * How many runs a pass over data has in flight at once on this session: as many as ORT has
     * intra-op threads. Runs of small inputs (a sentence) leave ORT's intra-op threads mostly idle,
     * and concurrent runs share them, so a pass over small inputs finishes sooner; a large input
     * still has every thread when it runs alone. One at a time for a model of
     * {@link OrtSessions#IN_MEMORY_FROM} or more, whose activations may be large too, and where the caller said
     * so ({@link #oneRunAtATime}).
     */
    public int concurrentRuns() {
        return alone || memoryBound() ? 1 : intraOpThreads();
    }

    /**
     * This runner, from now on with one run at a time in a pass over data: for samples too large to share a run
     * ({@link Batches#runsAlone}). Runners made from it by {@link #fixing} after this do too.
     */
    public OrtRunner oneRunAtATime() {
        alone = true;
        return this;
    }

    /** Whether the session is over a model of {@link OrtSessions#IN_MEMORY_FROM} or more (the memory-bound path). */
    private boolean memoryBound() {
        return modelBytes >= OrtSessions.IN_MEMORY_FROM;
    }

    /**
     * The model with the named tensors added as graph outputs (those not outputs already), for ORT alone: declared
     * without a type, which ORT takes from the node that makes each one. A tensor exposed is not always float (a
     * boundary of the float prefix can be the int32 mask index of ORT's fused EmbedLayerNormalization), and a
     * declared type that differs from the node's fails the session.
     */
    public static Model exposeOutputs(Model model, Collection<String> names) {
        GraphProto g = model.graph();
        Set<String> present = new HashSet<>();
        for (ValueInfoProto v : g.getOutputList()) {
            present.add(v.getName());
        }
        GraphProto.Builder b = g.toBuilder();
        for (String n : names) {
            if (present.add(n)) {
                b.addOutput(ValueInfoProto.newBuilder().setName(n));
            }
        }
        return model.withGraph(b.build());
    }

    private static final java.util.concurrent.atomic.AtomicLong SESSIONS = new java.util.concurrent.atomic.AtomicLong();
    private static final java.util.concurrent.atomic.AtomicLong RUNS = new java.util.concurrent.atomic.AtomicLong();

    /** Sessions created and runs made by every runner of this process so far: where a stage's time goes. */
    public static long[] counts() {
        return new long[] {SESSIONS.get(), RUNS.get()};
    }

    public Set<String> inputNames() {
        return inputNames;
    }

    /** The tensors the session can return. */
    public Set<String> outputNames() {
        try {
            return session.getOutputNames();
        } catch (RuntimeException e) {
            throw new QwtException("ONNX Runtime cannot name its outputs: " + e.getMessage(), e);
        }
    }

    /** The element types (ONNX codes) of the named outputs, as the session gives them. */
    public Map<String, Integer> outputElementTypes(Collection<String> names) {
        try {
            Map<String, ai.onnxruntime.NodeInfo> info = session.getOutputInfo();
            Map<String, Integer> out = new LinkedHashMap<>();
            for (String n : names) {
                ai.onnxruntime.NodeInfo i = info.get(n);
                if (i == null || !(i.getInfo() instanceof ai.onnxruntime.TensorInfo t)) {
                    throw new QwtException("the session has no tensor output '" + n + "'");
                }
                out.put(n, HostTensor.dataType(t.type).code);
            }
            return out;
        } catch (OrtException e) {
            throw new QwtException("ONNX Runtime cannot describe its outputs: " + OrtSessions.firstLine(e.getMessage()), e);
        }
    }

    /**
     * The sample's tensors by input name, as ORT tensors that the caller closes (listed in {@code owned})
     * over direct buffers that the caller then frees (listed in {@code buffers}).
     */
    private Map<String, OnnxTensor> feed(Sample sample, List<OnnxTensor> owned, List<ByteBuffer> buffers)
            throws OrtException {
        Map<String, OnnxTensor> feed = new HashMap<>();
        for (String in : inputNames) {
            HostTensor t = sample.inputs().get(in);
            if (t == null && fixed.containsKey(in)) {
                feed.put(in, fixed.get(in));
                continue;
            }
            if (t == null) {
                throw new QwtException("sample " + sample.id() + " has no value for model input '" + in + "'");
            }
            OnnxTensor ot = t.toOnnx(env, buffers::add);
            owned.add(ot);
            feed.put(in, ot);
        }
        return feed;
    }

    /**
     * Runs one sample and returns the shapes of the requested outputs, read from ORT's tensors without copying
     * their values out: how large each is, for planning what later passes fetch.
     */
    public Map<String, long[]> shapes(Sample sample, Collection<String> outputs) {
        return run(sample, outputs, t -> t.getInfo().getShape());
    }

    /** Runs one sample and returns the requested outputs as float tensors. */
    public Map<String, FloatTensor> run(Sample sample, Collection<String> outputs) {
        return run(sample, outputs, OrtRunner::toFloat);
    }

    /**
     * Runs one sample and returns the requested outputs in their own element types (for values
     * that are fed to another model, such as the outer-scope tensors an If branch reads).
     */
    public Map<String, HostTensor> runHost(Sample sample, Collection<String> outputs) {
        return run(sample, outputs, HostTensor::fromOnnx);
    }

    private <T> Map<String, T> run(Sample sample, Collection<String> outputs, java.util.function.Function<OnnxTensor, T> copy) {
        List<OnnxTensor> owned = new ArrayList<>();
        List<ByteBuffer> buffers = new ArrayList<>();
        try {
            Map<String, OnnxTensor> feed = feed(sample, owned, buffers);
            Map<String, T> out = new LinkedHashMap<>();
            RUNS.incrementAndGet();
            try (OrtSession.Result r = session.run(feed, new HashSet<>(outputs))) {
                for (String name : outputs) {
                    OnnxValue v = r.get(name).orElseThrow(() -> new QwtException("ONNX Runtime gave no output '" + name + "'"));
                    out.put(name, copy.apply((OnnxTensor) v));
                }
            }
            return out;
        } catch (OrtException e) {
            throw new RunFailure(sample.id(), OrtSessions.firstLine(e.getMessage()), e);
        } finally {
            for (OnnxTensor t : owned) {
                t.close();
            }
            // Freed now: a direct buffer is otherwise given back only when a collection finds it, and a pass
            // of large inputs (images) with little heap traffic between collections piles them up.
            buffers.forEach(DirectMemory::free);
        }
    }

    /**
     * ORT failed while running a sample. What it failed on is read from ORT's message here, at the
     * boundary, once: ORT's Java API gives only a status code and text.
     */
    public static final class RunFailure extends QwtException {
        private final boolean raggedLoopOutput;

        RunFailure(String sampleId, String ortMessage, OrtException cause) {
            super("ONNX Runtime failed on sample " + sampleId + ": " + ortMessage, cause);
            // ORT's Loop and Scan kernels stack each iteration's output and fail with this text when its shape changes.
            this.raggedLoopOutput = ortMessage.contains("Inconsistent shape");
        }

        /** Whether a Loop or Scan output changed shape between iterations, so ORT could not stack it. */
        public boolean raggedLoopOutput() {
            return raggedLoopOutput;
        }
    }

    private static FloatTensor toFloat(OnnxTensor t) {
        long[] shape = t.getInfo().getShape();
        if (t.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT) {
            // ORT copies the output into a new heap buffer: its array is ours, no second copy needed.
            FloatBuffer fb = t.getFloatBuffer();
            if (fb.hasArray() && fb.arrayOffset() == 0 && fb.position() == 0 && fb.remaining() == fb.array().length) {
                return new FloatTensor(fb.array(), shape);
            }
            float[] data = new float[fb.remaining()];
            fb.get(data);
            return new FloatTensor(data, shape);
        }
        return new FloatTensor(HostTensor.fromOnnx(t).toFloats(), shape);
    }

    @Override
    public void close() {
        if (!ownsSession) {
            fixed.values().forEach(OnnxTensor::close);
            fixedBuffers.forEach(DirectMemory::free);
            return;
        }
        try {
            handle.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Closes the session on a background thread, off the caller's path: freeing its native memory
     * takes milliseconds the caller need not wait for. A process about to exit waits for pending closes
     * first ({@link #awaitBackgroundCloses}): ORT's shutdown hook releases its environment, and hooks run
     * concurrently, so a close still running then would race it.
     * Sessions over models of {@link OrtSessions#IN_MEMORY_FROM} or more close at once: the next
     * session must not coexist with them.
     */
    public void closeInBackground() {
        if (memoryBound()) {
            close();
            return;
        }
        closerUsed = true;
        try {
            Closer.INSTANCE.executor.execute(() -> {
                try {
                    close();
                } catch (RuntimeException e) {
                    // Nothing waits on it; the process frees what could not be.
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            close(); // drained already: the process is on its way out
        }
    }

    /** Whether a session was closed in the background (the closer thread exists). */
    private static volatile boolean closerUsed;

    /**
     * Waits, up to 30 s, for the sessions closing in the background to be closed, and closes any later one at once:
     * for a process about to exit (the command line calls it before {@code System.exit}).
     */
    public static void awaitBackgroundCloses() {
        if (closerUsed) {
            Closer.INSTANCE.drain();
        }
    }

    /**
     * Waits, up to 30 s, for the sessions given to the closer so far to be closed, the closer kept for later ones: for
     * a library call about to return, after which its caller may end the JVM (whose shutdown would then run ORT's
     * hook beside those closes).
     */
    public static void flushBackgroundCloses() {
        if (!closerUsed) {
            return;
        }
        try {
            Closer.INSTANCE.executor.submit(() -> { }).get(Closer.WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.RejectedExecutionException | java.util.concurrent.ExecutionException
                | java.util.concurrent.TimeoutException e) {
            // Drained already, or a close hangs: nothing more to wait for here.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One daemon thread closing sessions in turn, drained before an exit or by a shutdown hook (created on first use). */
    private enum Closer {
        INSTANCE;

        final java.util.concurrent.ExecutorService executor = java.util.concurrent.Executors
                .newSingleThreadExecutor(r -> {
                    Thread t = new Thread(r, "qwt-ort-closer");
                    t.setDaemon(true);
                    return t;
                });

        /** Longest wait for pending closes, so that a close hung in native code cannot hang the caller. */
        static final long WAIT_SECONDS = 30;

        Closer() {
            Runtime.getRuntime().addShutdownHook(new Thread(this::drain, "qwt-ort-closer-drain"));
        }

        /** Takes no more closes and waits, up to 30 s, for those pending. */
        void drain() {
            executor.shutdown();
            try {
                executor.awaitTermination(WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
