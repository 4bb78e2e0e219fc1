package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.Histogram;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.RangeOverrides;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.ExternalData;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.run.Destination;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.RunContext;
import dev.qwtonnx.target.Target;
import dev.qwtonnx.ort.CpuFeatures;
import dev.qwtonnx.verify.Fidelity;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
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

    @CommandLine.Mixin
    CalibrationMixin samples = new CalibrationMixin();

    @Option(names = "--shuffle", description = "Pick and order the samples at random, seeded by --seed.")
    boolean shuffle;

    @Option(names = "--calibrate", defaultValue = "auto", paramLabel = "M",
            description = "Activation range method: minmax, percentile, entropy or mse; auto: minmax, and where the "
                    + "held-out fidelity is poor percentile too, the better kept (default: ${DEFAULT-VALUE}).")
    String calibrate;

    @Option(names = "--percentile", defaultValue = "99.99", paramLabel = "P",
            description = "Share of values kept by --calibrate percentile (default: ${DEFAULT-VALUE}).")
    double percentile;

    @Option(names = "--calib-batch", defaultValue = "8", paramLabel = "N",
            description = "Samples of equal shape run together while calibrating and compensating, at most "
                    + "(default: ${DEFAULT-VALUE}; fewer where a run would hold more than 16 MiB of activations).")
    int calibBatch;

    @Option(names = "--range-overrides", paramLabel = "FILE", description = "JSON choosing the range method per tensor "
            + "or per op type reading it: {\"tensors\": {\"name\": \"mse\"}, \"ops\": {\"MatMul\": \"percentile\"}}.")
    Path rangeOverrides;

    @CommandLine.Mixin
    CwacMixin cwac = new CwacMixin();

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

    @Option(names = "--keep-slow-int8", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Quantize also the layers a fixed cost model estimates slower in int8 than in float on ORT CPU "
                    + "(by default they stay float, listed with their estimates) (default: ${DEFAULT-VALUE}).")
    boolean keepSlowInt8;

    @Option(names = "--quantize-log-inputs", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Quantize also the layers whose outputs reach a Log through magnitude operations (an audio "
                    + "front-end's STFT and mel filterbank; by default they stay float) (default: ${DEFAULT-VALUE}).")
    boolean quantizeLogInputs;

    @Option(names = "--keep-float", split = ",", paramLabel = "NODES",
            description = "Names of Conv/MatMul/Gemm nodes to leave in float.")
    List<String> keepFloat = new ArrayList<>();

    @Option(names = "--reduce-range", description = "Use 7-bit weights at 8 bits (avoids u8*s8 saturation on x86 "
            + "CPUs without VNNI).")
    boolean reduceRange;

    @Option(names = "--target", defaultValue = "cpu", paramLabel = "NAME",
            description = "Where the model runs: cpu (ORT CPU, any x86-64 or ARM64), cpu-vnni, arm64, wasm, tensorrt, qnn, "
                    + "xnnpack, nnapi, openvino (default: ${DEFAULT-VALUE}).")
    String target;

    @Option(names = "--activation-bits", defaultValue = "8", paramLabel = "N",
            description = "Activation bits: 8, or 16 where the target takes them (qnn: A16W8) (default: ${DEFAULT-VALUE}).")
    int activationBits;

    @Option(names = "--output-q", split = ",", paramLabel = "OPS",
            description = "Op types whose output is re-quantized: conv, gemm, matmul (default: the target's; conv on ORT CPU).")
    List<String> outputQ;

    @CommandLine.Mixin
    HoldOut holdOut = new HoldOut();

    @CommandLine.Mixin
    AccuracyMixin accuracy = new AccuracyMixin();

    @CommandLine.Mixin
    ExternalDataMixin externalData = new ExternalDataMixin();

    @Option(names = "--report", paramLabel = "PATH", description = "Write the quantization report to PATH (.html or "
            + ".json) instead of OUT's name with .report.html and .report.json next to OUT.")
    Path report;

    @Option(names = "--no-report", description = "Write no report.")
    boolean noReport;

    // Off by default: the model before compensation is a third model in the per-layer pass's session, a third
    // of the report's time (decision 0021); the fit errors before and after, which compensation measured anyway,
    // say per layer what it changed.
    @Option(names = "--report-before", description = "The report also measures each layer of the model before "
            + "compensation on the held-out samples (SQNR before).")
    boolean reportBefore;

    // 0: the report is a by-product of quantizing and should cost a small share of the run, and the
    // fidelity pass already runs both models on every held-out sample, interleaved; timing those runs
    // costs nothing, where runs of their own cost seconds on a CNN (decision 0020).
    @Option(names = "--runs", defaultValue = "0", paramLabel = "N",
            description = "Timed runs of each model on the first held-out sample for the report's latency; "
                    + "0 times the fidelity pass's one run per held-out sample instead (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--target-opset", defaultValue = "13", paramLabel = "N",
            description = "Upgrade the model to this opset (13..21) before quantizing; a model above it keeps its own "
                    + "(default: ${DEFAULT-VALUE}).")
    long targetOpset;

    @Option(names = "--format", defaultValue = "auto", paramLabel = "F",
            description = "qdq (QuantizeLinear/DequantizeLinear around float layers), qoperator (QLinearConv, "
                    + "QLinearMatMul, MatMulIntegerToFloat, QGemm) or auto: qoperator on ORT CPU targets with 8-bit "
                    + "activations, qdq on the others (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--embeddings", defaultValue = "int8", paramLabel = "P", description = "Gather tables (token, "
            + "position, type embeddings): int8 (one scale per row) or float (default: ${DEFAULT-VALUE}).")
    String embeddings;

    @Option(names = "--quiet", description = "No progress bars and no summary.")
    boolean quiet;

    @Option(names = "--verbose", description = "Log the stages with their times, each pass, every layer left as it "
            + "was and why, and show stack traces.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        QuantizeRun.Options options = options().withAccuracy(accuracy.options());
        holdOut.validate();
        Destination.Format outputFormat = outputFormat();
        if (outputFormat == Destination.Format.QOPERATOR && !target().ortCpu()) {
            throw new QwtException("--format qoperator writes ORT CPU's integer operators; --target " + target().name()
                    + " takes the QDQ form");
        }
        ExternalData.Policy externalPolicy = externalData.policy(); // a bad --external-data fails before any work
        checkOutput(output, input);
        samples.check(); // before the model is read
        // Duplicate node names (which ORT refuses) are renamed before the check, as prepare does.
        Model floatModel = ModelFiles.loadNamed(input, spec.commandLine().getErr());
        List<Path> reports = QuantizeReport.paths(output, report, noReport);
        try (CalibrationSource opened = samples.open(floatModel)) {
            CalibrationSource all = samples.limited(opened, shuffle ? holdOut.seed : null);
            HoldOut.Split split = holdOut.split(all);
            Progress progress = quiet || System.console() == null ? Progress.NONE : new BarProgress();
            Path source = samples.source();
            // Fidelity is measured for the summary (a report measures it anyway), a target, and --calibrate auto, whose
            // choice of ranges reads it: the output is the same with --quiet; with none, the run ends at save.
            Destination destination = new Destination(output, input, outputFormat, externalPolicy, reports,
                    source.toString(), runs, !quiet || accuracy.needsFidelity()
                    || QuantizeRun.clipsWherePoor(options, floatModel.serializedSize()), reportBefore);
            RunContext ctx = new RunContext(split.fit(), split.reused() ? null : split.measure(), progress,
                    verbose ? s -> spec.commandLine().getErr().println("  " + s) : null);
            QuantizeRun.Result r;
            try {
                r = QuantizeRun.run(floatModel, options, destination, ctx);
            } catch (dev.qwtonnx.run.FidelityShortfall e) { // --strict: nothing written
                e.lines().forEach(spec.commandLine().getErr()::println);
                spec.commandLine().getErr().println("qwt-onnx: --strict: not written: " + output);
                return STRICT_FAILURE;
            }
            r.warnings().forEach(spec.commandLine().getErr()::println);
            if (!quiet) {
                summary(out, r, ctx, start);
            }
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

    /** --format, with auto resolved for the target. */
    Destination.Format outputFormat() {
        if (format.equalsIgnoreCase("auto")) {
            return Destination.Format.preferred(target());
        }
        if (!format.equalsIgnoreCase("qdq") && !format.equalsIgnoreCase("qoperator")) {
            throw new QwtException("--format takes auto, qdq or qoperator, got '" + format + "'");
        }
        return parse(Destination.Format.class, format, "--format");
    }

    /** The --target description, with --activation-bits applied. */
    Target target() {
        return Target.named(target).withActivationBits(activationBits);
    }

    QuantizeRun.Options options() {
        Target t = target();
        Set<LayerKind> outQ = QuantOptions.kinds(t.outputQuantized());
        if (outputQ != null) {
            outQ = EnumSet.noneOf(LayerKind.class);
            outQ.addAll(QuantOptions.kinds(t.outputQuantized()).contains(LayerKind.CONV) ? Set.of(LayerKind.CONV) : Set.of());
        }
        for (String s : outputQ == null ? List.<String>of() : outputQ) {
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
                parse(WeightRounding.class, rounding, "--rounding"), new LinkedHashSet<>(keepFloat), floatBudget, t, keepSlowInt8,
                quantizeLogInputs);
        CwacOptions c = cwac.options();
        boolean auto = calibrate.trim().equalsIgnoreCase("auto");
        RangeMethod method;
        try {
            method = auto ? RangeMethod.MINMAX : RangeOverrides.parseMethod(calibrate, "--calibrate");
        } catch (QwtException e) { // a range-overrides file takes the methods only; the option takes auto too
            throw new QwtException("--calibrate takes auto, minmax, percentile, entropy or mse, got '" + calibrate + "'");
        }
        CalibOptions calibOptions = new CalibOptions(method, percentile, Histogram.DEFAULT_CAPACITY,
                rangeOverrides == null ? RangeOverrides.NONE : RangeOverrides.read(rangeOverrides), calibBatch, auto);
        return new QuantizeRun.Options(q, c, false, calibOptions, targetOpset)
                .withEmbeddings(parse(dev.qwtonnx.quant.EmbeddingPrecision.class, embeddings, "--embeddings"));
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

    /** The exit code of a --strict run whose output misses its accuracy target or has poor fidelity. */
    static final int STRICT_FAILURE = 3;

    /** Most reasons a summary lists before pointing at --verbose. */
    private static final int LISTED_REASONS = 8;

    /** Shared weights, If branches, Loop/Scan bodies, and why layers were left in float (non-constant weights, say). */
    private static void coverage(PrintWriter out, QuantizeRun.Result r) {
        for (String note : r.plan().notes()) {
            out.println("note: " + note);
        }
        String untouched = dev.qwtonnx.quant.UntouchedWeights.note(r.prepared());
        if (!untouched.isEmpty()) {
            out.println("note: " + untouched);
        }
        for (QuantizeRun.IfBranch b : r.ifBranches()) {
            out.println(b.summary());
        }
        List<String> rejected = new ArrayList<>(grouped(r.plan().rejections()));
        for (QuantizeRun.LoopBody b : r.loopBodies()) {
            out.println(b.summary());
            rejected.addAll(b.leftFloat());
        }
        for (int i = 0; i < Math.min(LISTED_REASONS, rejected.size()); i++) {
            out.println("left in float: " + rejected.get(i));
        }
        if (rejected.size() > LISTED_REASONS) {
            out.printf("left in float: %d more (--verbose lists them)%n", rejected.size() - LISTED_REASONS);
        }
    }

    /**
     * One line per reason and operator: a transformer's attention MatMuls (two activations, "its weight is
     * not a constant") are one line, not one each; a reason given once keeps its node's own line.
     */
    static List<String> grouped(List<LayerMatcher.Rejected> rejections) {
        // Keyed by operator and reason (a line break is in neither).
        Map<String, List<LayerMatcher.Rejected>> byReason = new LinkedHashMap<>();
        for (LayerMatcher.Rejected x : rejections) {
            byReason.computeIfAbsent(op(x) + "\n" + x.why(), k -> new ArrayList<>()).add(x);
        }
        List<String> lines = new ArrayList<>();
        for (List<LayerMatcher.Rejected> xs : byReason.values()) {
            if (xs.size() == 1) {
                lines.add(xs.get(0).toString());
                continue;
            }
            lines.add(xs.size() + " " + op(xs.get(0)) + " nodes (" + name(xs.get(0)) + ", " + name(xs.get(1))
                    + (xs.size() > 2 ? " and " + (xs.size() - 2) + " more" : "") + "), each: " + xs.get(0).why());
        }
        return lines;
    }

    /** The operator of a rejected node, described as "MatMul node 'name'". */
    private static String op(LayerMatcher.Rejected x) {
        int space = x.node().indexOf(' ');
        return space < 0 ? x.node() : x.node().substring(0, space);
    }

    /** Its quoted name. */
    private static String name(LayerMatcher.Rejected x) {
        return x.node().substring(op(x).length()).replaceFirst("^ node ", "");
    }

    private void summary(PrintWriter out, QuantizeRun.Result r, RunContext ctx, long start) {
        int layers = r.plan().layers().size() + r.branchLayers() + r.loopLayers();
        out.printf("quantized %d layer%s (%d left in float), compensated %d (%s)%n", layers, layers == 1 ? "" : "s",
                r.plan().rejected().size() + r.branchFloatLayers() + r.loopFloatLayers(), r.compensatedLayers(), cwac.method);
        coverage(out, r);
        long slower = r.plan().rejections().stream().filter(x -> x.reason() == LayerMatcher.Reason.SLOWER).count();
        long logFed = r.plan().rejections().stream().filter(x -> x.reason() == LayerMatcher.Reason.LOG_INPUT).count();
        if (layers == 0 && slower > 0) {
            // An all-float output is the cost model's verdict, not a failure: say so and how to overrule it.
            out.println("no layer is estimated faster in int8 than in float on ORT CPU, so the output is the prepared "
                    + "float model; --keep-slow-int8 quantizes them anyway");
        } else if (layers == 0 && logFed > 0) {
            out.println("every layer feeds a log (" + logFed + " left in float: an int8 grid's error on small values "
                    + "becomes a large one after it), so the output is the prepared float model; --quantize-log-inputs "
                    + "quantizes them anyway");
        }
        // A target that takes static shapes only: the sizes the inputs were fixed to, and what stays dynamic.
        r.prepared().proto().getMetadataPropsList().stream()
                .filter(p -> p.getKey().equals(dev.qwtonnx.prepare.FixInputShapes.METADATA_KEY))
                .forEach(p -> out.println("fixed input shapes: " + p.getValue()));
        ctx.diagnostics().reasons().stream().filter(x -> x.stage().equals(dev.qwtonnx.prepare.FixInputShapes.NAME))
                .forEach(x -> out.println("left dynamic: " + x.subject() + ": " + x.why()));
        if (r.accuracy().hasTarget()) {
            out.printf("accuracy target %s: %s on %s before compensation with %d layer(s) returned to float "
                    + "(%d candidate models measured)%n", String.join(", ", r.accuracy().target()),
                    r.accuracy().met() ? "met" : "not met", r.accuracy().samples(), r.accuracy().returned().size(),
                    r.accuracy().measured());
        }
        for (Sensitivity.LayerError e : r.keptFloat()) {
            out.printf("kept in float by the budget: %s (relative output error %.3g when quantized alone)%n",
                    e.layer(), e.relativeError());
        }
        Target t = target();
        out.println("target: " + t.name() + " (" + t.description() + ")");
        if (weightBits == 8 && !reduceRange && t.weights().qmax() == 127 && t.activations().type() == DataType.UINT8
                && t.runtime() == Target.Runtime.ORT_CPU) {
            out.println("note: full-range 8-bit weights with u8 activations: ORT's u8*s8 kernels saturate on x86 "
                    + "CPUs without VNNI" + (CpuFeatures.current().lacksInt8DotProduct() ? ", such as this one" : "")
                    + " (--target cpu avoids it)");
        }
        double before = r.compensation().sseBefore();
        double after = r.compensation().sseAfter();
        if (before > 0) {
            out.printf("calibration error of compensated layers: %.4g -> %.4g (%.1f%% lower)%n", before, after,
                    100 * (1 - after / before));
        }
        if (r.ranges() != null) {
            out.println(r.ranges());
        }
        String measuredOn = dev.qwtonnx.model.MeasuredOutputs.note(r.prepared());
        if (!measuredOn.isEmpty()) {
            out.println("note: " + measuredOn);
        }
        out.printf("fidelity on %d %s samples:%n", ctx.measured().size(),
                ctx.heldOut() == null ? "calibration (no hold-out)" : "held-out");
        for (Fidelity.OutputFidelity f : r.fidelity()) {
            out.println("  " + f);
        }
        if (t.ortCpu()) {
            Model optimized = r.optimized();
            Map<String, Integer> ops = OrtKernels.opCounts(optimized);
            List<String> unfused = OrtKernels.unfusedLayers(optimized);
            out.printf("ORT integer kernels: %d for %d quantized layers %s; left in float by ORT: %s%n",
                    OrtKernels.count(ops, OrtKernels.INTEGER_OPS), layers, integerOps(ops),
                    unfused.isEmpty() ? "none" : unfused);
            if (t.runtime() == Target.Runtime.NODE_WASM) {
                // The target's own runtime, where a user would look for the speed-up.
                dev.qwtonnx.verify.runtime.ForeignRuntime.Availability a = dev.qwtonnx.verify.runtime.ForeignRuntime
                        .of(dev.qwtonnx.verify.runtime.Platform.WASM).availability();
                if (a.available()) {
                    dev.qwtonnx.verify.runtime.RuntimeCheck.check(r.prepared(), r.written(),
                            dev.qwtonnx.calib.data.CalibrationSources.limit(ctx.measured(), 4, null),
                            dev.qwtonnx.verify.runtime.Platform.WASM).lines().forEach(out::println);
                } else {
                    out.println("onnxruntime-web: not available here (" + a.why() + "); fidelity and kernels above are "
                            + "ORT CPU's");
                }
            }
        } else {
            out.println("checked against " + t.name() + "'s rules, not run on the device; the fidelity above runs its "
                    + "arithmetic (" + t.activations().type().name().toLowerCase() + (t.activations().symmetric()
                            ? " symmetric" : "") + " activations) on ORT CPU");
        }
        out.printf("wrote %s in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
    }
}
