package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.cwac.ChannelFit;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.verify.CpuFeatures;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.verify.Fidelity;
import dev.qwtonnx.verify.OrtKernels;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The main job: quantize a float model to compensated static INT8 QDQ. */
@Command(name = "quantize", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Quantize a float ONNX model to static INT8 (QDQ) with channel-wise affine compensation.")
final class QuantizeCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IN", description = "Float ONNX model.")
    Path input;

    @Parameters(index = "1", paramLabel = "OUT", description = "Where to write the INT8 model (never the input).")
    Path output;

    @Option(names = "--calib", required = true, paramLabel = "DIR",
            description = "Calibration data: a folder of .npz files (arrays named by model input), of .npy files, "
                    + "or of ONNX test-data sets (test_data_set_*/input_*.pb).")
    Path calib;

    @Option(names = "--method", defaultValue = "cwac", paramLabel = "M",
            description = "none (plain PTQ), bias (bias correction), cwac (default: ${DEFAULT-VALUE}).")
    String method;

    @Option(names = "--target", defaultValue = "global", paramLabel = "T",
            description = "CWAC target: local or global (default: ${DEFAULT-VALUE}).")
    String target;

    @Option(names = "--schedule", defaultValue = "sequential", paramLabel = "S",
            description = "CWAC schedule: parallel or sequential (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--ridge", defaultValue = "0.01", paramLabel = "R",
            description = "Ridge strength pulling the per-channel gain toward 1 (default: ${DEFAULT-VALUE}).")
    double ridge;

    @Option(names = "--gate", defaultValue = "cv", paramLabel = "G",
            description = "none: every channel takes its fit; cv: each channel keeps none, shift or affine, whichever "
                    + "predicts held-out calibration samples best (default: ${DEFAULT-VALUE}).")
    String gate;

    @Option(names = "--weight-bits", defaultValue = "8", paramLabel = "N",
            description = "Bits of the symmetric weight grid, stored in int8: 2..8 (default: ${DEFAULT-VALUE}).")
    int weightBits;

    @Option(names = "--rounding", defaultValue = "auto", paramLabel = "R",
            description = "Weight rounding: nearest; gptq (MatMul/Gemm weights rounded with error feedback from the "
                    + "calibration inputs; Conv keeps nearest); auto = gptq below 8 bits (default: ${DEFAULT-VALUE}).")
    String rounding;

    @Option(names = "--float-budget", defaultValue = "0", paramLabel = "N",
            description = "Keep the N layers whose quantization alone hurts the outputs most in float "
                    + "(measured on calibration data; costs N+1 extra passes over a few samples) (default: ${DEFAULT-VALUE}).")
    int floatBudget;

    @Option(names = "--keep-float", split = ",", paramLabel = "NODES",
            description = "Names of Conv/MatMul/Gemm nodes to leave in float.")
    List<String> keepFloat = new ArrayList<>();

    @Option(names = "--reduce-range", description = "Use 7-bit weights at 8 bits (avoids u8*s8 saturation on x86 "
            + "CPUs without VNNI).")
    boolean reduceRange;

    @Option(names = "--output-q", split = ",", defaultValue = "conv", paramLabel = "OPS",
            description = "Op types whose output is re-quantized: conv (always), gemm, matmul (default: ${DEFAULT-VALUE}).")
    List<String> outputQ;

    @Option(names = "--holdout", defaultValue = "0.2", paramLabel = "F",
            description = "Fraction of the calibration samples held out to measure fidelity (default: ${DEFAULT-VALUE}).")
    double holdout;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the hold-out split (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--report", paramLabel = "PATH", description = "Write the quantization report to PATH (.html or "
            + ".json) instead of OUT's name with .report.html and .report.json next to OUT.")
    Path report;

    @Option(names = "--no-report", description = "Write no report.")
    boolean noReport;

    @Option(names = "--runs", defaultValue = "20", paramLabel = "N",
            description = "Timed runs of each model for the report's latency figures (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--format", defaultValue = "qdq", paramLabel = "F",
            description = "qdq (QuantizeLinear/DequantizeLinear around float layers) or qoperator (QLinearConv, "
                    + "QLinearMatMul, MatMulIntegerToFloat, QGemm) (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--quiet", description = "No progress bars and no summary.")
    boolean quiet;

    @Option(names = "--verbose", description = "Log each pass and show stack traces.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        QwtOnnx.Options options = options();
        if (!(holdout >= 0 && holdout < 1)) {
            throw new QwtException("--holdout must be in [0, 1), got " + holdout);
        }
        boolean qoperator = !parse(Format.class, format, "--format").equals(Format.QDQ);
        checkOutput(output, input);
        Model floatModel;
        try {
            floatModel = ModelIO.load(input);
            ModelChecker.checkForRuntime(floatModel);
        } catch (QwtException e) {
            // Name the model file in front of what is wrong inside it (unless the message names it already).
            throw e.getMessage().contains(input.toString()) ? e : new QwtException(input + ": " + e.getMessage(), e);
        }
        List<Path> reports = QuantizeReport.paths(output, report, noReport);
        CalibrationSource all = CalibrationSources.open(calib, InputSpecs.of(floatModel.graph()));
        List<CalibrationSource> parts = all.size() >= 2 && holdout > 0 ? CalibrationSources.split(all, holdout, seed)
                : List.of(all, all);
        CalibrationSource calibSet = parts.get(0);
        CalibrationSource heldOut = parts.get(1).size() > 0 ? parts.get(1) : calibSet;
        Progress progress = quiet || System.console() == null ? Progress.NONE : new BarProgress();
        QwtOnnx.Result r = QwtOnnx.quantize(floatModel, calibSet, options, progress,
                verbose ? s -> spec.commandLine().getErr().println("  " + s) : null);
        Model written = qoperator ? QwtOnnx.toQOperator(r.model(), false, null) : r.model();
        ModelIO.save(written, output, input);
        // The report measures the QDQ model; a QOperator output computes the same to within one step.
        QuantizeReport.write(reports, r, input, output, heldOut, heldOut == calibSet, calib, calibSet.size(), method, runs, progress);
        if (!quiet) {
            summary(out, r, written, heldOut, heldOut == calibSet, progress, start);
        }
        return 0;
    }

    private static String integerOps(Map<String, Integer> ops) {
        StringBuilder b = new StringBuilder();
        ops.forEach((k, v) -> {
            if (OrtKernels.INTEGER_OPS.contains(k)) {
                b.append(b.length() == 0 ? "(" : ", ").append(k).append(' ').append(v);
            }
        });
        return b.length() == 0 ? "" : b.append(')').toString();
    }

    enum Format { QDQ, QOPERATOR }

    /** Refuses to write over {@code input} or into a folder that does not exist (user errors). */
    static void checkOutput(Path output, Path input) {
        Path inAbs = input.toAbsolutePath().normalize();
        Path outAbs = output.toAbsolutePath().normalize();
        if (inAbs.equals(outAbs) || (Files.exists(outAbs) && sameFile(inAbs, outAbs))) {
            throw new QwtException("output path is the input model; refusing to overwrite it: " + output);
        }
        if (outAbs.getParent() == null || !Files.isDirectory(outAbs.getParent())) {
            throw new QwtException("output folder does not exist: " + outAbs.getParent());
        }
        if (!Files.isWritable(outAbs.getParent())) {
            // Found now rather than after minutes of calibration.
            throw new QwtException("output folder is not writable: " + outAbs.getParent());
        }
    }

    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.isSameFile(a, b);
        } catch (java.io.IOException e) {
            return false;
        }
    }

    QwtOnnx.Options options() {
        Set<LayerKind> outQ = EnumSet.of(LayerKind.CONV);
        for (String s : outputQ) {
            String k = s.trim().toLowerCase();
            switch (k) {
                case "conv" -> outQ.add(LayerKind.CONV);
                case "gemm" -> outQ.add(LayerKind.GEMM);
                case "matmul" -> outQ.add(LayerKind.MATMUL);
                case "" -> { }
                default -> throw new QwtException("--output-q takes conv, gemm or matmul, got '" + s + "'");
            }
        }
        QuantOptions q = new QuantOptions(weightBits, reduceRange, outQ,
                parse(WeightRounding.class, rounding, "--rounding"), new LinkedHashSet<>(keepFloat), floatBudget);
        CwacOptions c = new CwacOptions(parse(CwacOptions.Method.class, method, "--method"),
                parse(CwacOptions.Target.class, target, "--target"),
                parse(CwacOptions.Schedule.class, schedule, "--schedule"), ridge, 2.0,
                parse(CwacOptions.Gate.class, gate, "--gate"));
        return new QwtOnnx.Options(q, c, false);
    }

    static <E extends Enum<E>> E parse(Class<E> type, String value, String option) {
        for (E e : type.getEnumConstants()) {
            if (e.name().equalsIgnoreCase(value)) {
                return e;
            }
        }
        StringBuilder allowed = new StringBuilder();
        for (E e : type.getEnumConstants()) {
            allowed.append(allowed.length() == 0 ? "" : ", ").append(e.name().toLowerCase());
        }
        throw new QwtException(option + " takes " + allowed + ", got '" + value + "'");
    }

    private void summary(PrintWriter out, QwtOnnx.Result r, Model written, CalibrationSource heldOut, boolean reused,
            Progress progress, long start) {
        int compensated = 0;
        for (ChannelFit f : r.compensation().fits().values()) {
            compensated += f.isIdentity() ? 0 : 1;
        }
        out.printf("quantized %d layers (%d left in float), compensated %d (%s)%n", r.plan().layers().size(),
                r.plan().rejected().size(), compensated, method);
        for (Sensitivity.LayerError e : r.keptFloat()) {
            out.printf("kept in float by the budget: %s (relative output error %.3g when quantized alone)%n",
                    e.layer(), e.relativeError());
        }
        if (weightBits == 8 && !reduceRange && CpuFeatures.current().lacksInt8DotProduct()) {
            out.println("note: this CPU has no VNNI int8 dot product; ORT's u8*s8 kernels may saturate with full-range "
                    + "8-bit weights here (--reduce-range avoids it)");
        }
        double before = r.compensation().sseBefore();
        double after = r.compensation().sseAfter();
        if (before > 0) {
            out.printf("calibration error of compensated layers: %.4g -> %.4g (%.1f%% lower)%n", before, after,
                    100 * (1 - after / before));
        }
        List<Fidelity.OutputFidelity> fid = Fidelity.measure(r.prepared(), written, heldOut, progress);
        out.printf("fidelity on %d %s samples:%n", heldOut.size(), reused ? "calibration (no hold-out)" : "held-out");
        for (Fidelity.OutputFidelity f : fid) {
            out.println("  " + f);
        }
        Model optimized = OrtKernels.optimized(written);
        Map<String, Integer> ops = OrtKernels.opCounts(optimized);
        List<String> unfused = OrtKernels.unfusedLayers(optimized);
        out.printf("ORT integer kernels: %d for %d quantized layers %s; left in float by ORT: %s%n",
                OrtKernels.count(ops, OrtKernels.INTEGER_OPS), r.plan().layers().size(), integerOps(ops),
                unfused.isEmpty() ? "none" : unfused);
        out.printf("wrote %s in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
    }
}
