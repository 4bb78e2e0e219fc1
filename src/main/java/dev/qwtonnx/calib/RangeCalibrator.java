package dev.qwtonnx.calib;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Calibration as an analysis: runs the float model over the data with the tensors of interest
 * exposed, feeds each to its observer, and keeps only the observers' statistics (O(tensors × bins)
 * memory, whatever the number of samples).
 */
public final class RangeCalibrator {
    /** Samples waiting to be joined into a batch, at most. */
    static final int BATCH_WINDOW = 64;

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
        List<String> names = new ArrayList<>(tensors);
        Map<String, RangeObserver> obs = new LinkedHashMap<>();
        for (String n : names) {
            obs.put(n, observers.apply(n));
        }
        try (OrtRunner runner = new OrtRunner(floatModel, names)) {
            progress.start("calibrate ranges", data.size());
            int batch = Batches.batchable(InputSpecs.of(floatModel.graph())) ? maxBatch : 1;
            boolean joinFailed = false;
            for (Iterator<Batches.Batch> it = Batches.of(data, batch, Math.max(batch, BATCH_WINDOW)); it.hasNext();) {
                Batches.Batch b = it.next();
                if (b.count() > 1 && !joinFailed) {
                    try {
                        observe(obs, runner.run(b.sample(), names));
                        b.parts().forEach(p -> progress.step());
                        continue;
                    } catch (QwtException e) {
                        // A model whose graph fixes the batch to 1 despite a dynamic input: run singly.
                        joinFailed = true;
                    }
                }
                for (Sample s : b.parts()) {
                    observe(obs, runner.run(s, names));
                    progress.step();
                }
            }
            progress.finish();
        }
        return ranges(obs);
    }

    private static void observe(Map<String, RangeObserver> obs, Map<String, FloatTensor> out) {
        for (var e : out.entrySet()) {
            obs.get(e.getKey()).observe(e.getValue().data());
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
