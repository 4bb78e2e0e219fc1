package dev.qwtonnx.quant;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Second moments H = Σ x·xᵀ of layer inputs over the calibration data, one K×K matrix per input
 * tensor (layers reading the same tensor share it), x being the input's last axis. Memory is
 * O(K²) per tensor whatever the number of samples.
 */
public final class InputMoments {
    private InputMoments() {
    }

    /** A symmetric K×K sum of outer products, row-major, and the number of rows summed. */
    public record Moments(int k, double[] h, long rows) {
    }

    public static Map<String, Moments> collect(Model floatModel, Collection<String> tensors, CalibrationSource data,
            Progress progress) {
        List<String> names = new ArrayList<>(tensors);
        Map<String, double[]> sums = new LinkedHashMap<>();
        Map<String, long[]> rows = new LinkedHashMap<>();
        Map<String, Integer> widths = new LinkedHashMap<>();
        try (OrtRunner runner = new OrtRunner(floatModel, names)) {
            progress.start("input moments", data.size());
            for (Sample s : data) {
                Map<String, FloatTensor> out = runner.run(s, names);
                for (String n : names) {
                    FloatTensor t = out.get(n);
                    int k = (int) t.shape()[t.shape().length - 1];
                    Integer known = widths.putIfAbsent(n, k);
                    if (known != null && known != k) {
                        throw new IllegalStateException("tensor '" + n + "' changed its last dimension: " + known + " vs " + k);
                    }
                    double[] h = sums.computeIfAbsent(n, x -> new double[k * k]);
                    rows.computeIfAbsent(n, x -> new long[1])[0] += addOuterProducts(h, t.data(), k);
                }
                progress.step();
            }
            progress.finish();
        }
        Map<String, Moments> result = new LinkedHashMap<>();
        for (String n : names) {
            int k = widths.get(n);
            double[] h = sums.get(n);
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < i; j++) {
                    h[i * k + j] = h[j * k + i]; // only the upper triangle was summed
                }
            }
            result.put(n, new Moments(k, h, rows.get(n)[0]));
        }
        return result;
    }

    /** Adds x·xᵀ of every row of {@code x} (rows of length k) to the upper triangle of h. */
    static long addOuterProducts(double[] h, float[] x, int k) {
        int n = x.length / k;
        double[] row = new double[k];
        for (int r = 0; r < n; r++) {
            int off = r * k;
            for (int i = 0; i < k; i++) {
                row[i] = x[off + i];
            }
            for (int i = 0; i < k; i++) {
                double xi = row[i];
                if (xi == 0) {
                    continue;
                }
                int base = i * k;
                for (int j = i; j < k; j++) {
                    h[base + j] += xi * row[j];
                }
            }
        }
        return n;
    }
}
