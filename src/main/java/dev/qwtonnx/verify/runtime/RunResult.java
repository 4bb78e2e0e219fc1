package dev.qwtonnx.verify.runtime;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.Npy;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one model's run on a runtime left in its folder, written by {@link RunOutputs} (Java) or
 * {@code run-outputs.mjs} (onnxruntime-web) in the same format: {@code result.txt}, one tab-separated
 * record a line ({@code engine TEXT}, {@code output J NAME}, {@code kernel OP COUNT},
 * {@code kernels-unavailable WHY}, {@code latency MS SAMPLE_ID}), and {@code sample_<k>/output_<j>.npy}.
 *
 * @param kernels    op counts of the graph the runtime runs; null when it cannot list them
 * @param kernelsWhy why {@code kernels} is null (empty otherwise)
 * @param latencyMs  each sample's run time in milliseconds, in sample order
 */
public record RunResult(Path dir, String engine, List<String> outputs, Map<String, Integer> kernels,
        String kernelsWhy, List<String> sampleIds, double[] latencyMs) {
    public static final String FILE = "result.txt";

    static String sampleDir(int k) {
        return String.format(Locale.ROOT, "sample_%04d", k);
    }

    static String outputFile(int j) {
        return "output_" + j + ".npy";
    }

    static String latencyLine(String sampleId, double ms) {
        return String.format(Locale.ROOT, "latency\t%.4f\t%s", ms, sampleId);
    }

    public int samples() {
        return sampleIds.size();
    }

    /** The {@code j}-th graph output of the {@code k}-th sample. */
    public HostTensor output(int k, int j) {
        return Npy.read(dir.resolve(sampleDir(k)).resolve(outputFile(j)));
    }

    /** The named output of the {@code k}-th sample. */
    public HostTensor output(int k, String name) {
        int j = outputs.indexOf(name);
        if (j < 0) {
            throw new QwtException(dir + ": the run wrote no output '" + name + "'");
        }
        return output(k, j);
    }

    public static RunResult read(Path dir) {
        Path f = dir.resolve(FILE);
        List<String> lines;
        try {
            lines = Files.readAllLines(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new QwtException("the runtime wrote no result: " + f + " (" + e.getMessage() + ")", e);
        }
        String engine = "";
        List<String> outputs = new ArrayList<>();
        Map<String, Integer> kernels = new LinkedHashMap<>();
        String why = "";
        List<String> ids = new ArrayList<>();
        List<Double> ms = new ArrayList<>();
        for (String line : lines) {
            String[] p = line.split("\t", 3);
            switch (p[0]) {
                case "engine" -> engine = p[1];
                case "output" -> {
                    if (Integer.parseInt(p[1]) != outputs.size()) {
                        throw new QwtException(f + ": outputs out of order at '" + line + "'");
                    }
                    outputs.add(p[2]);
                }
                case "kernel" -> kernels.merge(p[1], Integer.parseInt(p[2]), Integer::sum);
                case "kernels-unavailable" -> why = p[1];
                case "latency" -> {
                    ms.add(Double.parseDouble(p[1]));
                    ids.add(p.length > 2 ? p[2] : "");
                }
                default -> {
                    // Records a newer writer adds are skipped.
                }
            }
        }
        return new RunResult(dir, engine, List.copyOf(outputs), why.isEmpty() ? Map.copyOf(kernels) : null, why,
                List.copyOf(ids), ms.stream().mapToDouble(Double::doubleValue).toArray());
    }
}
