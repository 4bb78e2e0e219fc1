package dev.qwtonnx.calib;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Collection;
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
    private final Function<String, RangeObserver> observers;

    /** One observer per tensor, made by {@code observers} from the tensor's name. */
    public RangeCalibrator(Function<String, RangeObserver> observers) {
        this.observers = observers;
    }

    /** The same kind of observer for every tensor. */
    public RangeCalibrator(Supplier<RangeObserver> observers) {
        this(t -> observers.get());
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
            for (Sample s : data) {
                Map<String, FloatTensor> out = runner.run(s, names);
                for (var e : out.entrySet()) {
                    obs.get(e.getKey()).observe(e.getValue().data());
                }
                progress.step();
            }
            progress.finish();
        }
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
