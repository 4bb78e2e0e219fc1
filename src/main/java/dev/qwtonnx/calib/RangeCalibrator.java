package dev.qwtonnx.calib;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Calibration as an analysis: runs the float model over the data with the tensors of interest
 * exposed, feeds each to its observer, and keeps only the observers' statistics (O(tensors × bins)
 * memory, whatever the number of samples).
 */
public final class RangeCalibrator {
    private final Function<String, RangeObserver> observers;
    private final int maxBatch;

    /**
     * One observer per tensor, made by {@code observers} from the tensor's name; up to
     * {@code maxBatch} samples of equal shapes run as one batch where the model's first
     * dimensions are dynamic.
     */
    public RangeCalibrator(Function<String, RangeObserver> observers, int maxBatch) {
        if (maxBatch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, got " + maxBatch);
        }
        this.observers = observers;
        this.maxBatch = maxBatch;
    }

    /** The same kind of observer for every tensor, one sample per run. */
    public RangeCalibrator(Supplier<RangeObserver> observers) {
        this(t -> observers.get(), 1);
    }

    /**
     * What one pass observes, and what it hands over besides the ranges.
     *
     * @param tensors the tensors whose ranges are observed
     * @param reduced of those, the ones observed through the session's own reductions of them (see
     *     {@link InGraphMinMax}: their [min, max] outputs, for min/max observers; {@link InGraphTails}: [largest,
     *     smallest, shape], for {@link TailObserver}s) rather than copied out whole
     * @param flushAt with a value above 0, the samples before it are batched among themselves (see
     *     {@link Batches#of(Iterable, int, int, int)}), in the same pass as the others
     * @param extra the outputs each batch also fetches (outputs the session exposes; asked on the threads running
     *     the batches, so a function of the batch alone)
     * @param tap given those outputs with the batch they cover, in the data's order
     */
    public record Pass(Collection<String> tensors, Map<String, List<String>> reduced, int flushAt,
            Function<Batches.Batch, Collection<String>> extra, BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
        /** {@code tensors} observed, each copied out whole, nothing else fetched. */
        public static Pass of(Collection<String> tensors) {
            return new Pass(tensors, Map.of(), 0, b -> List.of(), (b, out) -> { });
        }

        /** This pass with the tensors of {@code reduced} observed through the session's reductions of them. */
        public Pass reducedAs(Map<String, List<String>> reduced) {
            return new Pass(tensors, reduced, flushAt, extra, tap);
        }

        /** This pass also fetching {@code extra} of each batch for {@code tap}, the samples before {@code flushAt} batched apart. */
        public Pass handingOver(int flushAt, Function<Batches.Batch, Collection<String>> extra,
                BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
            return new Pass(tensors, reduced, flushAt, extra, tap);
        }
    }

    /** The ranges of {@code tensors} over {@code data}, from a float session of the pass's own. */
    public Map<String, Range> calibrate(Model floatModel, Collection<String> tensors, CalibrationSource data,
            Progress progress) {
        try (OrtRunner runner = OrtRunner.forPasses(floatModel, tensors)) {
            return calibrate(runner, floatModel, Pass.of(tensors), data, progress);
        }
    }

    /**
     * The ranges of the pass's tensors over {@code data}, on a float session the caller made and keeps (it exposes
     * what the pass fetches), handing over what the pass says.
     */
    public Map<String, Range> calibrate(OrtRunner runner, Model floatModel, Pass pass, CalibrationSource data,
            Progress progress) {
        Collection<String> tensors = pass.tensors();
        Map<String, List<String>> reduced = pass.reduced();
        Function<Batches.Batch, Collection<String>> extra = pass.extra();
        List<String> names = new ArrayList<>();
        Map<String, RangeObserver> obs = new LinkedHashMap<>();
        for (String n : tensors) {
            RangeObserver o = observers.apply(n);
            List<String> r = reduced.get(n);
            if (r != null && !(o instanceof MinMaxObserver && r.size() == 2 || o instanceof TailObserver && r.size() == 3)) {
                throw new IllegalArgumentException("tensor '" + n + "' is reduced in the graph as its observer does not "
                        + "read it");
            }
            obs.put(n, o);
            names.addAll(reduced.getOrDefault(n, List.of(n)));
        }
        progress.start("calibrate ranges", data.size());
        int batch = Batches.batchable(InputSpecs.of(floatModel.graph())) ? maxBatch : 1;
        // Observed on the thread that ran the batch (each observer's result does not depend on the order of
        // batches: min/max, histograms with integer counts); only the extra outputs wait for the tap, in order.
        Batches.run(runner, data, batch, pass.flushAt(), Batches.Batch::sample, b -> {
            Collection<String> more = extra.apply(b);
            if (more.isEmpty()) {
                return names;
            }
            Set<String> fetch = new LinkedHashSet<>(names);
            fetch.addAll(more);
            return fetch;
        }, (b, out) -> {
            observe(obs, reduced, out);
            Map<String, FloatTensor> kept = new LinkedHashMap<>();
            for (String t : extra.apply(b)) {
                kept.put(t, out.get(t));
            }
            return kept;
        }, progress, pass.tap());
        progress.finish();
        return ranges(obs);
    }

    private static void observe(Map<String, RangeObserver> obs, Map<String, List<String>> reduced,
            Map<String, FloatTensor> out) {
        for (var e : obs.entrySet()) {
            RangeObserver o = e.getValue();
            List<String> r = reduced.get(e.getKey());
            synchronized (o) {
                if (r != null && o instanceof TailObserver t) {
                    InGraphTails.observe(t, out.get(r.get(0)), out.get(r.get(1)), out.get(r.get(2)));
                } else if (r != null) {
                    InGraphMinMax.observe(o, out.get(r.get(0)), out.get(r.get(1)));
                } else {
                    o.observe(out.get(e.getKey()).data());
                }
            }
        }
    }

    private static Map<String, Range> ranges(Map<String, RangeObserver> obs) {
        Map<String, Range> ranges = new LinkedHashMap<>();
        for (var e : obs.entrySet()) {
            Range r = e.getValue().range();
            if (r == null) {
                throw new QwtException("tensor '" + e.getKey() + "' had no finite value in the calibration data");
            }
            ranges.put(e.getKey(), r);
        }
        return ranges;
    }
}
