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

    public Map<String, Range> calibrate(Model floatModel, Collection<String> tensors, CalibrationSource data,
            Progress progress) {
        try (OrtRunner runner = OrtRunner.forPasses(floatModel, tensors)) {
            return calibrate(runner, floatModel, tensors, List.of(), data, progress, (b, out) -> { });
        }
    }

    /**
     * Calibration on a float session the caller made and keeps (it exposes {@code tensors} and
     * {@code extra}): each run's {@code extra} outputs are also handed to {@code tap} with the batch
     * they cover — compensation keeps the float activations it compares with, so that the float
     * model runs once for both.
     */
    public Map<String, Range> calibrate(OrtRunner runner, Model floatModel, Collection<String> tensors,
            Collection<String> extra, CalibrationSource data, Progress progress,
            BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
        return calibrate(runner, floatModel, tensors, extra, 0, data, progress, tap);
    }

    /**
     * As {@link #calibrate(OrtRunner, Model, Collection, Collection, CalibrationSource, Progress, BiConsumer)},
     * {@code extra} fetched, and {@code tap} called, only for the first {@code extraSamples} samples (0: all):
     * copying activations out of ORT that nobody keeps costs time. Those samples are batched among
     * themselves, so that a later pass over them alone finds the same batches, in the same pass as the
     * others (two passes left no run in flight between them).
     */
    public Map<String, Range> calibrate(OrtRunner runner, Model floatModel, Collection<String> tensors,
            Collection<String> extra, int extraSamples, CalibrationSource data, Progress progress,
            BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
        boolean split = extraSamples > 0 && extraSamples < data.size();
        return calibrate(runner, floatModel, tensors, split ? extraSamples : 0,
                b -> !split || b.ordinals().get(0) < extraSamples ? extra : List.of(), data, progress, (b, out) -> {
                    if (!split || b.ordinals().get(0) < extraSamples) {
                        tap.accept(b, out);
                    }
                });
    }

    /**
     * Calibration on the caller's session, each batch also fetching {@code extra} of it (outputs the
     * session exposes; asked on the threads running the batches, so a function of the batch alone),
     * which are handed to {@code tap} in the data's order; with {@code flushAt} > 0, the samples
     * before it are batched among themselves (see {@link Batches#of(Iterable, int, int, int)}), in
     * the same pass as the others.
     */
    public Map<String, Range> calibrate(OrtRunner runner, Model floatModel, Collection<String> tensors, int flushAt,
            java.util.function.Function<Batches.Batch, Collection<String>> extra, CalibrationSource data,
            Progress progress, BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
        return calibrate(runner, floatModel, tensors, Map.of(), flushAt, extra, data, progress, tap);
    }

    /**
     * As above, the tensors in {@code reduced} observed through the session's own reductions of them
     * (see {@link InGraphMinMax}: their [min, max] outputs, for min/max observers; {@link InGraphTails}:
     * [largest, smallest, shape], for {@link TailObserver}s) rather than copied out whole.
     */
    public Map<String, Range> calibrate(OrtRunner runner, Model floatModel, Collection<String> tensors,
            Map<String, List<String>> reduced, int flushAt,
            java.util.function.Function<Batches.Batch, Collection<String>> extra, CalibrationSource data,
            Progress progress, BiConsumer<Batches.Batch, Map<String, FloatTensor>> tap) {
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
        Batches.run(runner, data, batch, flushAt, Batches.Batch::sample, b -> {
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
        }, progress, tap);
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
