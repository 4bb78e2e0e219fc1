package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerPlan;
import java.util.Arrays;
import java.util.HashMap;
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
 * transformer's embeddings: a word table of tens of MB and its LayerNorm, and the attention mask),
 * cut from compensation's measuring models: they start where quantization does, and neither load
 * the prefix's weights nor run it, so their sessions are smaller and quicker to make. What
 * the prefix computes, the boundary tensors, the calibration pass computes already (the same float
 * operators on the same inputs): it hands them over for the samples compensation measures on, kept
 * per sample (a measuring batch may join them otherwise than calibration did); a sample without
 * them has them computed on the calibration session.
 */
public final class FloatPrefix {
    /** A prefix with fewer initializer bytes than this costs a measuring session little: not cut. */
    static final long MIN_BYTES = 1L << 20;

    private final Set<String> boundary;
    private final int keep;
    private final boolean batchable;
    private final long budgetBytes;
    /** By sample ({@link FloatReference#sampleKey}), its boundary tensors, dimension 0 of each 1. */
    private final Map<String, Map<String, FloatTensor>> kept = new HashMap<>();
    private long keptBytes;
    /** The calibration session, asked for only for a sample whose boundary is not kept. */
    private Supplier<OrtRunner> runner;
    private boolean usable;
    /** Whether a sample offered was not kept (refused for the budget, or its boundary not given). */
    private boolean missed;
    private int computed;
    private int served;

    private FloatPrefix(Set<String> boundary, int keep, boolean batchable, long budgetBytes) {
        this.boundary = boundary;
        this.keep = keep;
        this.batchable = batchable;
        this.budgetBytes = budgetBytes;
    }

    /**
     * The float prefix of {@code prepared} once {@code layers} are quantized, its boundary kept for
     * the samples compensation under {@code options} measures on (its first ones, up to
     * {@link Compensator#MIN_ROWS} of them for layers with few rows); null where compensation is off
     * or the prefix holds less than {@link #MIN_BYTES} of initializers.
     */
    public static FloatPrefix plan(Model prepared, List<LayerPlan> layers, CwacOptions options) {
        if (options.method() == CwacOptions.Method.NONE) {
            return null;
        }
        Set<String> names = new HashSet<>();
        layers.forEach(l -> names.add(l.name()));
        Split split = split(prepared.graph(), n -> names.contains(n.getName()));
        if (split.boundary().isEmpty() || split.initializerBytes() < MIN_BYTES) {
            return null;
        }
        int keep = options.samples() == 0 ? Integer.MAX_VALUE : Math.max(options.samples(), Compensator.MIN_ROWS);
        return new FloatPrefix(split.boundary(), keep, Batches.batchable(InputSpecs.of(prepared.graph())),
                options.keepBytes(prepared));
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
            boolean downstream = quantizes.test(n) || Subgraphs.hasSubgraphs(n);
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

    /** The boundary tensors, in the order the graph first reads them: the calibration session exposes them. */
    public Set<String> boundary() {
        return boundary;
    }

    /** Whether the calibration pass hands over the boundary of a batch with {@code firstOrdinal} first. */
    public boolean wants(int firstOrdinal) {
        return usable && firstOrdinal < keep;
    }

    /**
     * Takes the calibration session (which exposes the boundary): it computes the boundary of the
     * samples not kept. The prefix is used only if every boundary tensor is float.
     */
    public void attach(OrtRunner calibration) {
        attach(() -> calibration);
    }

    /**
     * As {@link #attach(OrtRunner)}, the session asked for again only for a sample not kept (a
     * {@link dev.qwtonnx.calib.SessionOnDemand} released meanwhile is made again).
     */
    public void attach(Supplier<OrtRunner> calibration) {
        runner = calibration;
        usable = calibration.get().outputElementTypes(boundary).values().stream()
                .allMatch(t -> t == DataType.FLOAT.code);
    }

    /** Whether every sample offered so far was kept, or the prefix is not used: the session is not asked again. */
    public boolean keptAllOffered() {
        return !usable || !missed;
    }

    /** Keeps, per sample, the boundary tensors of a calibration batch's first samples, within the memory budget. */
    public void offer(Batches.Batch b, Map<String, FloatTensor> out) {
        if (!usable) {
            return;
        }
        for (int i = 0; i < b.count(); i++) {
            if (b.ordinals().get(i) >= keep) {
                continue;
            }
            Map<String, FloatTensor> mine = new LinkedHashMap<>();
            long bytes = 0;
            for (String t : boundary) {
                FloatTensor y = out.get(t);
                if (y == null || y.shape().length == 0 || y.shape()[0] != b.count()) {
                    missed = true;
                    return; // not given, or not joined along dimension 0: computed again when asked for
                }
                int per = y.data().length / b.count();
                long[] shape = y.shape().clone();
                shape[0] = 1;
                mine.put(t, b.count() == 1 ? y : new FloatTensor(Arrays.copyOfRange(y.data(), i * per, (i + 1) * per),
                        shape));
                bytes += 4L * per;
            }
            if (keptBytes + bytes <= budgetBytes) {
                kept.put(FloatReference.sampleKey(b, i), mine);
                keptBytes += bytes;
            } else {
                missed = true;
            }
        }
    }

    /** Whether measuring batches may join samples along dimension 0 (as the model's own inputs allow). */
    boolean batchable() {
        return batchable;
    }

    /** Whether the prefix can give the boundary (the calibration session is attached, every boundary tensor float). */
    boolean usable() {
        return usable;
    }

    /**
     * The batch's inputs plus its boundary tensors: those kept, joined along dimension 0, or
     * computed on the calibration session. Safe to call from several threads once calibration is over.
     */
    Sample withBoundary(Batches.Batch b) {
        Map<String, HostTensor> inputs = new LinkedHashMap<>(b.sample().inputs());
        Map<String, HostTensor> joined = joinedKept(b);
        if (joined == null) {
            runner.get().run(b.sample(), boundary)
                    .forEach((t, y) -> inputs.put(t, HostTensor.ofFloats(y.shape(), y.data())));
        } else {
            inputs.putAll(joined);
        }
        synchronized (this) {
            served++;
            computed += joined == null ? 1 : 0;
        }
        return new Sample(b.sample().id(), inputs);
    }

    private Map<String, HostTensor> joinedKept(Batches.Batch b) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (String t : boundary) {
            FloatTensor[] parts = new FloatTensor[b.count()];
            int total = 0;
            for (int i = 0; i < b.count(); i++) {
                Map<String, FloatTensor> k = kept.get(FloatReference.sampleKey(b, i));
                parts[i] = k == null ? null : k.get(t);
                if (parts[i] == null || !Arrays.equals(parts[i].shape(), parts[0].shape())) {
                    return null; // not kept, or of another shape than the batch's first (joined otherwise)
                }
                total += parts[i].data().length;
            }
            float[] data = parts.length == 1 ? parts[0].data() : new float[total];
            if (parts.length > 1) {
                for (int i = 0, at = 0; i < parts.length; at += parts[i].data().length, i++) {
                    System.arraycopy(parts[i].data(), 0, data, at, parts[i].data().length);
                }
            }
            long[] shape = parts[0].shape().clone();
            shape[0] = b.count();
            out.put(t, HostTensor.ofFloats(shape, data));
        }
        return out;
    }

    /** The element types of the boundary tensors (ONNX codes): all float where the prefix is usable. */
    Map<String, Integer> boundaryTypes() {
        Map<String, Integer> out = new LinkedHashMap<>();
        boundary.forEach(t -> out.put(t, DataType.FLOAT.code));
        return out;
    }

    /** Batches whose boundary was computed on the calibration session rather than kept. */
    synchronized int computed() {
        return computed;
    }

    /** Batches given their boundary so far. */
    synchronized int served() {
        return served;
    }

    /** Samples whose boundary is kept. */
    int keptSamples() {
        return kept.size();
    }
}
