package dev.qwtonnx.verify.runtime;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Npy;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtKernels;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs models on samples with ORT and writes what a {@link ForeignRuntime} reads back: the process
 * that runs this may be this JVM's java under qemu, or the arm64 JVM, so everything it reports goes
 * through files.
 *
 * <p>{@code RunOutputs SAMPLES_DIR OUT_DIR MODEL...}: the samples are read as {@code --calib DIR}
 * reads them. For the i-th model, {@code OUT_DIR/model_<i>/} gets {@code sample_<k>/output_<j>.npy}
 * (the j-th graph output of the k-th sample, in its own element type) and {@code result.txt} in
 * the {@link RunResult} format: the engine, the output names, the op counts of the graph ORT
 * optimizes the model into on this CPU, and each sample's run time (after one warm-up run).
 * ORT runs with the intra-op threads of {@code -Dqwt.ort.threads} (launchers pass 1).
 */
public final class RunOutputs {
    private RunOutputs() {
    }

    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: RunOutputs SAMPLES_DIR OUT_DIR MODEL...");
            System.exit(2);
        }
        try {
            Path samples = Path.of(args[0]);
            Path out = Path.of(args[1]);
            for (int i = 2; i < args.length; i++) {
                run(ModelIO.load(Path.of(args[i])), samples, out.resolve("model_" + (i - 2)));
            }
        } catch (QwtException e) {
            System.err.println("RunOutputs: " + e.getMessage());
            System.exit(2);
        }
    }

    /** Runs {@code model} on every sample of {@code samplesDir}; writes outputs and result.txt to {@code out}. */
    public static void run(Model model, Path samplesDir, Path out) {
        List<String> outputs = new ArrayList<>();
        for (ValueInfoProto v : model.graph().getOutputList()) {
            outputs.add(v.getName());
        }
        Map<String, Integer> kernels = OrtKernels.optimizedOpCounts(model);
        List<String> latency = new ArrayList<>();
        try (CalibrationSource src = CalibrationSources.open(samplesDir, InputSpecs.of(model.graph()));
                OrtRunner runner = new OrtRunner(model, List.of())) {
            Files.createDirectories(out);
            boolean warm = false;
            int k = 0;
            for (Sample s : src) {
                if (!warm) {
                    runner.runHost(s, outputs);
                    warm = true;
                }
                long t0 = System.nanoTime();
                Map<String, HostTensor> r = runner.runHost(s, outputs);
                double ms = (System.nanoTime() - t0) / 1e6;
                latency.add(RunResult.latencyLine(s.id(), ms));
                Path dir = out.resolve(RunResult.sampleDir(k++));
                Files.createDirectories(dir);
                for (int j = 0; j < outputs.size(); j++) {
                    try (OutputStream o = Files.newOutputStream(dir.resolve(RunResult.outputFile(j)))) {
                        Npy.write(o, r.get(outputs.get(j)));
                    }
                }
            }
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve(RunResult.FILE),
                    StandardCharsets.UTF_8))) {
                w.println("engine\tonnxruntime-java " + ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion()
                        + " " + System.getProperty("os.arch"));
                for (int j = 0; j < outputs.size(); j++) {
                    w.println("output\t" + j + "\t" + outputs.get(j));
                }
                kernels.forEach((op, n) -> w.println("kernel\t" + op + "\t" + n));
                latency.forEach(w::println);
            }
        } catch (IOException e) {
            throw new QwtException("cannot write the outputs to " + out + ": " + e.getMessage(), e);
        }
    }
}
