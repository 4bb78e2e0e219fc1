package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The float model's activations that compensation compares quantized layers with, per batch of
 * calibration data. They do not change from one compensation stage to the next, so each batch's
 * are kept once computed — or handed over by the calibration pass, which runs the float model
 * already — within a memory budget; beyond it a batch is computed again each time it is asked
 * for. Memory is O(budget), whatever the number of samples.
 */
public final class FloatReference implements AutoCloseable {
    private final Model floatModel;
    private final Set<String> outputs;
    private final long budgetBytes;
    /** The caller's session (null: one of this reference's own, made on first use from {@code floatModel}). */
    private final Supplier<OrtRunner> shared;
    private OrtRunner runner;
    private final Map<List<String>, Map<String, FloatTensor>> kept = new HashMap<>();
    private long keptBytes;
    /** Whether a batch was once refused for the budget: from then on, batches not kept are not offered. */
    private boolean full;
    /** Whether a batch offered was not kept (refused for the budget, or not all the outputs given). */
    private boolean missed;

    private FloatReference(Model floatModel, Supplier<OrtRunner> shared, Collection<String> outputs, long budgetBytes) {
        this.floatModel = floatModel;
        this.shared = shared;
        this.outputs = new LinkedHashSet<>(outputs);
        this.budgetBytes = budgetBytes;
    }

    /**
     * A reference computing {@code outputs} on a session of its own, made on first use, keeping at
     * most {@code budgetBytes} of activations (see {@link CwacOptions#keepBytes}).
     */
    public static FloatReference of(Model floatModel, Collection<String> outputs, long budgetBytes) {
        return new FloatReference(floatModel, null, outputs, budgetBytes);
    }

    /** A reference computing {@code outputs} on the caller's session (which exposes them), within {@code budgetBytes}. */
    public static FloatReference on(OrtRunner runner, Collection<String> outputs, long budgetBytes) {
        return on(() -> runner, outputs, budgetBytes);
    }

    /**
     * As {@link #on(OrtRunner, Collection, long)}, the session asked for only when a batch is not kept (a
     * {@link dev.qwtonnx.calib.SessionOnDemand} released meanwhile is made again).
     */
    public static FloatReference on(Supplier<OrtRunner> session, Collection<String> outputs, long budgetBytes) {
        return new FloatReference(null, session, outputs, budgetBytes);
    }

    /** Whether every batch offered so far was kept: asked again for those, the reference runs no session. */
    public boolean keptAllOffered() {
        return !missed;
    }

    /** Whether this reference can give every one of {@code names}. */
    public boolean serves(Collection<String> names) {
        return outputs.containsAll(names);
    }

    /** Keeps a batch's activations computed elsewhere (the calibration pass), within the budget. */
    public void offer(Batches.Batch batch, Map<String, FloatTensor> computed) {
        List<String> key = key(batch);
        if (kept.containsKey(key)) {
            return;
        }
        Map<String, FloatTensor> mine = new LinkedHashMap<>();
        long bytes = 0;
        for (String n : outputs) {
            FloatTensor t = computed.get(n);
            if (t == null) {
                missed = true;
                return; // not all of them: computed again when asked for
            }
            mine.put(n, t);
            bytes += t.bytes();
        }
        if (keptBytes + bytes <= budgetBytes) {
            kept.put(key, mine);
            keptBytes += bytes;
        } else {
            // Batches come in the data's order, the same each pass: once one does not fit, the later ones are
            // computed again each time whether a smaller one would fit or not.
            full = true;
            missed = true;
        }
    }

    /**
     * The float activations of one batch, at least {@code needed} of them: all, where kept or where
     * they may still fit the budget (computed now and kept); else only {@code needed}, computed now. A
     * batch beyond the budget is computed again at every stage that asks, and copying out every layer's
     * activation there for the few the stage reads would be most of what a CNN's compensate allocates.
     */
    public Map<String, FloatTensor> get(Batches.Batch batch, Collection<String> needed) {
        Map<String, FloatTensor> k = kept.get(key(batch));
        if (k != null) {
            return k;
        }
        OrtRunner r = session();
        if (full) {
            return r.run(batch.sample(), needed);
        }
        Map<String, FloatTensor> computed = r.run(batch.sample(), outputs);
        offer(batch, computed);
        return kept.getOrDefault(key(batch), computed);
    }

    private OrtRunner session() {
        if (shared != null) {
            return shared.get();
        }
        if (runner == null) {
            runner = OrtRunner.forPasses(floatModel, outputs);
        }
        return runner;
    }

    /**
     * A batch's samples by position and id: a source that gives its samples in another order the
     * second time round misses, and its activations are computed again rather than mismatched.
     */
    private static List<String> key(Batches.Batch batch) {
        List<String> key = new ArrayList<>(batch.count());
        for (int i = 0; i < batch.count(); i++) {
            key.add(sampleKey(batch, i));
        }
        return key;
    }

    /** Part {@code i} of a batch by position and id (see {@link #key}). */
    static String sampleKey(Batches.Batch batch, int i) {
        return batch.ordinals().get(i) + ":" + batch.parts().get(i).id();
    }

    /** Bytes of activations kept. */
    public long keptBytes() {
        return keptBytes;
    }

    @Override
    public void close() {
        kept.clear();
        if (runner != null) {
            runner.close();
            runner = null;
        }
    }
}
