package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.quant.LayerPlan;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The part of a model that quantization leaves in float ahead of everything it quantizes (a
 * transformer's embeddings: MiniLM's 47 MB word table and its LayerNorm, and the attention mask),
 * run on a session of its own, made while calibration runs, so that the measuring sessions of
 * compensation start where quantization does: they neither load the prefix's weights nor run it
 * (measured on MiniLM: measuring session 0.075 → 0.051 s). Its outputs, the boundary tensors, are
 * what the quantized model's own prefix computes: the same float operators on the same inputs.
 */
public final class FloatPrefix implements AutoCloseable {
    /** A prefix with fewer initializer bytes than this costs a measuring session little: not cut. */
    static final long MIN_BYTES = 1L << 20;

    private final Set<String> boundary;
    private final boolean batchable;
    private final Supplier<OrtRunner> session;
    private final Object lock = new Object();
    private boolean closed;
    private OrtRunner created;
    private int runs;

    private FloatPrefix(Set<String> boundary, boolean batchable, Supplier<OrtRunner> session) {
        this.boundary = boundary;
        this.batchable = batchable;
        this.session = session;
    }

    /**
     * The float prefix of {@code prepared} once {@code layers} are quantized, its session made on
     * {@code ahead}; null where compensation is off under {@code options} or the prefix holds less
     * than {@link #MIN_BYTES} of initializers.
     */
    public static FloatPrefix ahead(Model prepared, List<LayerPlan> layers, CwacOptions options, AheadTasks ahead) {
        if (options.method() == CwacOptions.Method.NONE) {
            return null;
        }
        Set<String> names = new HashSet<>();
        layers.forEach(l -> names.add(l.name()));
        Split split = split(prepared.graph(), n -> names.contains(n.getName()));
        if (split.boundary().isEmpty() || split.initializerBytes() < MIN_BYTES) {
            return null;
        }
        Model model = Slice.to(prepared, split.boundary());
        FloatPrefix[] self = new FloatPrefix[1];
        self[0] = new FloatPrefix(split.boundary(), Batches.batchable(InputSpecs.of(model.graph())),
                ahead.submit(() -> self[0].open(model)));
        return self[0];
    }

    /** The session over the prefix, unless closed first (a failed run's prefix is not made). */
    private OrtRunner open(Model model) {
        synchronized (lock) {
            if (closed) {
                return null;
            }
        }
        OrtRunner r = OrtRunner.forPasses(model, List.of());
        synchronized (lock) {
            if (closed) {
                r.closeInBackground();
                return null;
            }
            created = r;
            return r;
        }
    }

    /**
     * The boundary of a graph's float prefix: the non-constant tensors computed without any of the
     * nodes {@code quantizes} marks (nor anything downstream of one, nor a node with a subgraph)
     * and read by a node that has one upstream or is one; graph inputs are left out (a measuring
     * model reads them as it is). With the prefix's initializer bytes.
     */
    record Split(Set<String> boundary, long initializerBytes) {
    }

    static Split split(GraphProto g, Predicate<NodeProto> quantizes) {
        Map<String, TensorProto> initializers = new LinkedHashMap<>();
        g.getInitializerList().forEach(t -> initializers.put(t.getName(), t));
        Set<String> constant = new HashSet<>(initializers.keySet());
        Set<String> quantized = new HashSet<>();
        Set<String> prefixTensors = new HashSet<>();
        Set<String> boundary = new LinkedHashSet<>();
        Set<String> prefixReads = new HashSet<>();
        for (NodeProto n : g.getNodeList()) {
            boolean downstream = quantizes.test(n) || UnquantizedInputs.hasSubgraph(n);
            boolean allConstant = true;
            for (String in : n.getInputList()) {
                downstream |= quantized.contains(in);
                allConstant &= in.isEmpty() || constant.contains(in);
            }
            if (downstream) {
                quantized.addAll(n.getOutputList());
                for (String in : n.getInputList()) {
                    if (prefixTensors.contains(in)) {
                        boundary.add(in);
                    }
                }
            } else if (allConstant) {
                constant.addAll(n.getOutputList());
            } else {
                prefixTensors.addAll(n.getOutputList());
                prefixReads.addAll(n.getInputList());
            }
        }
        long bytes = 0;
        for (String r : prefixReads) {
            TensorProto t = initializers.get(r);
            bytes += t == null ? 0 : t.getRawData().size();
        }
        return new Split(boundary, bytes);
    }

    /** Whether the prefix takes samples joined along their first dimension (see {@link Batches#batchable}). */
    boolean batchable() {
        return batchable;
    }

    /** The boundary tensors, in the order the graph first reads them. */
    Set<String> boundary() {
        return boundary;
    }

    /**
     * {@code s}'s inputs plus its boundary tensors, computed by the prefix session (made now if the
     * thread ahead has not made it), or null if the session could not be had.
     */
    Sample withBoundary(Sample s) {
        OrtRunner r = session.get();
        if (r == null) {
            return null;
        }
        Map<String, HostTensor> inputs = new LinkedHashMap<>(s.inputs());
        inputs.putAll(r.runHost(s, boundary));
        synchronized (lock) {
            runs++;
        }
        return new Sample(s.id(), inputs);
    }

    /** The element types of the boundary tensors (ONNX codes), from the prefix session. */
    Map<String, Integer> boundaryTypes() {
        OrtRunner r = session.get();
        return r == null ? null : r.outputElementTypes(boundary);
    }

    /** Samples run through the prefix so far. */
    int runs() {
        synchronized (lock) {
            return runs;
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            if (created != null) {
                created.closeInBackground();
                created = null;
            }
        }
    }
}
