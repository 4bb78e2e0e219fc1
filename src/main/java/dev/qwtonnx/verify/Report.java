package dev.qwtonnx.verify;

import java.util.List;

/**
 * The quantization report: what changed (fidelity per output and per layer), what ORT runs, what
 * it costs, and where the model came from. Serialised as JSON (keys in docs/report.md) and as
 * one HTML page. Every field is always present; a figure that does not apply is null.
 */
public record Report(int schemaVersion, String generator, ModelFile floatModel, ModelFile quantizedModel,
        DataSet data, Provenance provenance, List<Fidelity.OutputFidelity> outputs, Layers layers, Runtime runtime,
        Cost cost, Compensation compensation, List<Decision> decisions, Accuracy accuracy, TargetCheck target) {

    /** Bumped whenever a key is added, removed or changes meaning. */
    public static final int SCHEMA_VERSION = 9;

    /** This report with the result of checking the quantized model against a target's rules. */
    public Report withTarget(TargetCheck t) {
        return new Report(schemaVersion, generator, floatModel, quantizedModel, data, provenance, outputs, layers,
                runtime, cost, compensation, decisions, accuracy, t);
    }

    /**
     * The quantized model checked against a hardware target's rules (null when no target was given).
     *
     * @param name        the target ({@code --target NAME})
     * @param runtime     how this machine checks the target ({@code RULES_ONLY}: no runtime here)
     * @param note        one line: what was run and what was only checked
     * @param rules       every rule of the target, with its source
     * @param violations  every node breaking a rule, in graph order
     */
    public record TargetCheck(String name, String description, String runtime, String note,
            List<dev.qwtonnx.target.Rule> rules, List<RuleViolation> violations) {
    }

    /** A node that breaks rule {@code rule} (an id in {@link TargetCheck#rules()}). */
    public record RuleViolation(String node, String opType, String rule, String detail) {
    }

    /**
     * The accuracy target and the fidelity warnings of a quantize run (null for verify).
     *
     * @param target   the target's bounds as they print; empty without a target
     * @param met      whether the target held on the search's samples before compensation (null without a target)
     * @param figure   the worst bound's figure at the end of the search (null without a target)
     * @param samples  what the search measured on (null without a target)
     * @param returned the layers returned to float, in the order chosen
     * @param warnings the lines beginning "warning:" about the written model
     */
    public record Accuracy(List<String> target, Boolean met, String figure, String samples, List<Returned> returned,
            List<String> warnings) {
    }

    /** A layer the accuracy target returned to float, with the worst bound's figure before and after. */
    public record Returned(String layer, String before, String after) {
    }

    /**
     * A decision a stage of the run made against something (a layer left in float, a rewrite that
     * did not apply) and why; empty for verify, which decides nothing.
     */
    public record Decision(String stage, String subject, String reason) {
    }

    /** A model file: where it is, its size on disk and its node count. */
    public record ModelFile(String path, long sizeBytes, int nodes) {
    }

    /** The samples the figures were measured on. */
    public record DataSet(String source, int samples) {
    }

    /** Read from the quantized model's qwt.* metadata; all null for a model from another tool. */
    public record Provenance(String tool, String version, String options, String calibration,
            Integer calibrationSamples, List<Entry> metadata) {
    }

    public record Entry(String key, String value) {
    }

    /**
     * Per-layer figures, worst first.
     *
     * @param found     quantized layers found in the quantized model's main graph
     * @param matched   of those, paired with a float node
     * @param unmatched quantized layers with no float counterpart (by name), not measured
     * @param inSubgraphs quantized layers inside If branches and Loop or Scan bodies: counted, not measured
     *                  (a run cannot fetch a subgraph's tensors)
     */
    public record Layers(int found, int matched, List<LayerFidelity> layers, List<String> unmatched, int inSubgraphs) {
    }

    /**
     * One quantized layer against the float node of the same role.
     *
     * @param sqnrDb            SQNR of the layer's output vs the float model's over the samples, their
     *                          energies summed (errors of every layer before it included)
     * @param minSqnrDb         the worst sample's
     * @param localSqnrDb       the layer's own error: its output vs the float layer applied to the
     *                          quantized model's input of that layer (null when not measurable)
     * @param sqnrBeforeDb      sqnrDb before compensation (null unless quantize wrote the report
     *                          with {@code --report-before})
     * @param localSqnrBeforeDb localSqnrDb before compensation
     * @param unfusedReason     null when ORT fused the layer into an integer kernel
     * @param gain              the CWAC a_c of the layer's channels (null when unknown)
     * @param offset            the CWAC b_c of the layer's channels (null when unknown)
     * @param fitErrorBefore    the layer's squared error against its fit target, summed over its
     *                          fitting samples, before compensation (null when not compensated)
     * @param fitErrorAfter     the same after compensation, measured by the same pass
     */
    public record LayerFidelity(String node, String opType, String style, String floatNode, String matchedBy,
            double weightCosine, double sqnrDb, double minSqnrDb, Double localSqnrDb, Double sqnrBeforeDb,
            Double localSqnrBeforeDb, boolean fused, String unfusedReason, Summary gain, Summary offset,
            Double fitErrorBefore, Double fitErrorAfter) {
    }

    /** min / mean / max of a set of numbers. */
    public record Summary(int count, double min, double mean, double max) {
    }

    /**
     * What ORT runs for each model, at {@code optimizationLevel}; {@code floatModel} null where the report does not
     * show the float model's graph ({@link Verifier.Options#floatGraph}).
     */
    public record Runtime(String ortVersion, String optimizationLevel, Graph floatModel, Graph quantizedModel,
            List<Unfused> unfused) {
    }

    /** The graph ORT optimized a model into. */
    public record Graph(int nodes, int integerKernels, List<OpCount> opCounts, List<Node> nodeList) {
    }

    public record OpCount(String op, int count) {
    }

    public record Node(String opType, String name) {
    }

    /** A quantized layer ORT runs as a float op on dequantized values, and the likely reason. */
    public record Unfused(String node, String opType, String reason) {
    }

    /**
     * Size and latency of both models; latency over interleaved runs with the same session options,
     * either {@code runs} runs each on one sample ({@code latencySample}) or one run each on each of
     * {@code latencySamples} samples (latencySample null; quantize times its fidelity pass so).
     */
    public record Cost(long floatBytes, long quantizedBytes, double sizeRatio, int runs, String latencySample,
            int latencySamples, Latency floatLatency,
            Latency quantizedLatency, Double speedup, Integer nodesAddedByCompensation) {
    }

    /** Milliseconds per run. */
    public record Latency(double medianMs, double p10Ms, double p90Ms, double minMs, double maxMs) {
    }

    /** The CWAC fits of this run (null in reports of models quantize did not just produce). */
    public record Compensation(String method, int layers, int channels, double sseBefore, double sseAfter,
            int nodesAdded, Summary gain, Histogram gainHistogram) {
    }

    public record Histogram(List<Bin> bins) {
    }

    public record Bin(double low, double high, int count) {
    }
}
