package dev.qwtonnx.verify.runtime;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.ExternalData;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.MeasuredOutputs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.Report;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Runs a quantized model on one {@link Platform} and measures it against the float model run here:
 * output fidelity of the int8 model's outputs <em>as that runtime computes them</em>, the integer
 * kernels that runtime runs, and float vs int8 latency on it (one thread each).
 *
 * <p>The float reference is this JVM's ORT; the float and int8 models both run on the platform, in
 * one process there, on the same samples (written as ONNX test-data sets to a temporary folder,
 * deleted afterwards).
 */
public final class RuntimeCheck {
    /** How long one platform's process may run (qemu is slow; a real model takes minutes). */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(20);

    private RuntimeCheck() {
    }

    /**
     * @param engine         what ran the models (e.g. "onnxruntime-java 1.29.0 aarch64", "onnxruntime-web 1.31.1 wasm")
     * @param fidelity       int8 outputs on the platform vs float outputs here, per float output
     * @param floatAgreement float outputs on the platform vs float outputs here (the runtime's own numerics)
     * @param kernels        op counts of the int8 graph the runtime runs; null when it cannot list them
     * @param kernelsWhy     why {@code kernels} is null (empty otherwise)
     * @param integerKernels integer kernels among {@code kernels} (ORT's fused QLinear*, QGemm, ...); -1 when unknown
     * @param floatLatency   the float model's per-sample run times on the platform
     * @param quantLatency   the int8 model's per-sample run times on the platform
     */
    public record Result(Platform platform, String engine, List<Fidelity.OutputFidelity> fidelity,
            List<Fidelity.OutputFidelity> floatAgreement, Map<String, Integer> kernels, String kernelsWhy,
            int integerKernels, Report.Latency floatLatency, Report.Latency quantLatency) {
        /** int8 median latency over float median latency on the platform (below 1: int8 is faster). */
        public double latencyRatio() {
            return quantLatency.medianMs() / floatLatency.medianMs();
        }

        /** One line per output and one for kernels and latency, for summaries and logs. */
        public List<String> lines() {
            List<String> l = new ArrayList<>();
            l.add(platform.description() + " [" + engine + "]:");
            fidelity.forEach(f -> l.add("  " + f));
            l.add("  " + (kernels == null ? "integer kernels: not available (" + kernelsWhy + ")"
                    : "integer kernels: " + integerKernels + " " + integerOps()));
            l.add(String.format(Locale.ROOT, "  latency, 1 thread, median: float %.2f ms, int8 %.2f ms (x%.2f)%s",
                    floatLatency.medianMs(), quantLatency.medianMs(), latencyRatio(),
                    platform.emulated() ? " (emulated: the emulator's speed, not the hardware's)" : ""));
            return l;
        }

        private Map<String, Integer> integerOps() {
            Map<String, Integer> m = new java.util.TreeMap<>(kernels);
            m.keySet().retainAll(OrtKernels.INTEGER_OPS);
            return m;
        }
    }

    /**
     * {@code RuntimeCheck FLOAT INT8 SAMPLES_DIR [N [PLATFORM...]]}: checks the int8 model on the
     * first N samples (default 4) on each named platform (default: every one available here) and
     * prints the result lines, or why a platform is unavailable.
     */
    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: RuntimeCheck FLOAT INT8 SAMPLES_DIR [N [PLATFORM...]]; platforms: "
                    + Arrays.toString(Platform.values()));
            System.exit(2);
        }
        try {
            Model f = ModelIO.load(Path.of(args[0]));
            Model q = ModelIO.load(Path.of(args[1]));
            int n = args.length > 3 ? Integer.parseInt(args[3]) : 4;
            List<Platform> platforms = args.length > 4
                    ? Arrays.stream(args, 4, args.length).map(a -> Platform.valueOf(a.toUpperCase(Locale.ROOT))).toList()
                    : List.of(Platform.values());
            try (CalibrationSource all = dev.qwtonnx.calib.data.CalibrationSources.open(Path.of(args[2]),
                    dev.qwtonnx.calib.data.InputSpecs.of(f.graph()))) {
                CalibrationSource samples = dev.qwtonnx.calib.data.CalibrationSources.limit(all, n, null);
                for (Platform p : platforms) {
                    ForeignRuntime.Availability a = ForeignRuntime.of(p).availability();
                    if (!a.available()) {
                        System.out.println(p.description() + ": not available here: " + a.why());
                        continue;
                    }
                    long t0 = System.nanoTime();
                    check(f, q, samples, p).lines().forEach(System.out::println);
                    System.out.printf(Locale.ROOT, "  wall time %.1f s%n", (System.nanoTime() - t0) / 1e9);
                }
            }
        } catch (QwtException | IllegalArgumentException e) {
            System.err.println("RuntimeCheck: " + e.getMessage());
            System.exit(2);
        }
    }

    /** As {@link #check(Model, Model, CalibrationSource, Platform, Duration)} with {@link #DEFAULT_TIMEOUT}. */
    public static Result check(Model floatModel, Model quantModel, CalibrationSource samples, Platform platform) {
        return check(floatModel, quantModel, samples, platform, DEFAULT_TIMEOUT);
    }

    /**
     * Runs both models on {@code platform} over every sample (pass a few: emulation is slow).
     *
     * @throws QwtException when the platform is not available here (see {@link ForeignRuntime#availability()})
     *                      or its run fails
     */
    public static Result check(Model floatModel, Model quantModel, CalibrationSource samples, Platform platform,
            Duration timeout) {
        ForeignRuntime runtime = ForeignRuntime.of(platform);
        Path work = null;
        try {
            work = Files.createTempDirectory("qwt-runtime-");
            Path f = work.resolve("float.onnx");
            Path q = work.resolve("int8.onnx");
            // A model with no float output is measured on the float tensors its outputs come from: both files
            // return them.
            List<String> beyond = MeasuredOutputs.beyondGraphOutputs(floatModel);
            ModelIO.save(OrtRunner.exposeOutputs(floatModel, beyond), f, null, ExternalData.Policy.DEFAULT);
            ModelIO.save(OrtRunner.exposeOutputs(quantModel, beyond), q, null, ExternalData.Policy.DEFAULT);
            Path data = work.resolve("samples");
            List<String> inputNames = floatModel.graph().getInputList().stream().map(ValueInfoProto::getName).toList();
            int n = writeSamples(samples, inputNames, data);
            List<RunResult> runs = runtime.run(data, work.resolve("out"), List.of(f, q), timeout);
            RunResult fr = runs.get(0);
            RunResult qr = runs.get(1);
            if (fr.samples() != n || qr.samples() != n) {
                throw new QwtException(platform.description() + " ran " + qr.samples() + " of " + n + " samples");
            }
            List<String> outs = MeasuredOutputs.of(floatModel);
            // Both runtime runs against the float model on this machine's ORT, summarised as the summary's fidelity is.
            Fidelity.Sums quant = new Fidelity.Sums(outs);
            Fidelity.Sums flt = new Fidelity.Sums(outs);
            try (OrtRunner ref = new OrtRunner(floatModel, beyond)) {
                int k = 0;
                for (Sample s : samples) {
                    Map<String, FloatTensor> want = ref.run(s, outs);
                    quant.add(s.id(), want, outputs(qr, k, outs));
                    flt.add(s.id(), want, outputs(fr, k, outs));
                    k++;
                }
            }
            Map<String, Integer> kernels = qr.kernels();
            return new Result(platform, qr.engine(), quant.result(), flt.result(), kernels, qr.kernelsWhy(),
                    kernels == null ? -1 : OrtKernels.count(kernels, OrtKernels.INTEGER_OPS),
                    latency(fr.latencyMs()), latency(qr.latencyMs()));
        } catch (IOException e) {
            throw new QwtException("cannot prepare the run on " + platform.description() + ": " + e.getMessage(), e);
        } finally {
            if (!Boolean.getBoolean("qwt.runtime.keep")) {
                ForeignRuntime.deleteTree(work);
            }
        }
    }

    /** The samples as ONNX test-data sets (test_data_set_<k>/input_<i>.pb, inputs in model order); how many. */
    static int writeSamples(CalibrationSource samples, List<String> inputNames, Path dir) throws IOException {
        int k = 0;
        for (Sample s : samples) {
            Path set = dir.resolve(String.format(Locale.ROOT, "test_data_set_%04d", k++));
            Files.createDirectories(set);
            for (int i = 0; i < inputNames.size(); i++) {
                HostTensor t = s.inputs().get(inputNames.get(i));
                if (t == null) {
                    throw new QwtException("sample " + s.id() + " has no value for model input '" + inputNames.get(i) + "'");
                }
                Files.write(set.resolve("input_" + i + ".pb"), t.toProto(inputNames.get(i)).toByteArray());
            }
        }
        if (k == 0) {
            throw new QwtException("no samples to run");
        }
        return k;
    }

    static Report.Latency latency(double[] ms) {
        double[] s = ms.clone();
        Arrays.sort(s);
        return new Report.Latency(percentile(s, 0.5), percentile(s, 0.1), percentile(s, 0.9), s[0], s[s.length - 1]);
    }

    private static double percentile(double[] sorted, double p) {
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /** The {@code k}-th sample's outputs of a runtime's run, as float tensors. */
    private static Map<String, FloatTensor> outputs(RunResult run, int k, List<String> outs) {
        Map<String, FloatTensor> out = new java.util.LinkedHashMap<>();
        for (String o : outs) {
            HostTensor t = run.output(k, o);
            out.put(o, new FloatTensor(t.toFloats(), t.shape()));
        }
        return out;
    }
}
