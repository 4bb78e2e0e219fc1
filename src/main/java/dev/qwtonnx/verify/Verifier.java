package dev.qwtonnx.verify;

import ai.onnxruntime.OrtEnvironment;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.Version;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.ChannelFit;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtKernels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The verify analysis: a float model and a quantized one with the same inputs and outputs, samples
 * to run them on, and (when quantize calls it) what the run knows about compensation, in; a
 * {@link Report} out. Works on any int8 model: ours, another tool's QDQ, or dynamic quantization.
 */
public final class Verifier {
    /** Bins of the a_c histogram. */
    static final int GAIN_BINS = 24;

    private Verifier() {
    }

    /**
     * How to verify: latency runs per model (0 skips the latency measurement), and whether the report shows the graph
     * ORT optimizes the float model into beside the quantized model's ({@code verify}'s does; quantize's report does
     * not, as that graph takes a session of the whole float model of its own: decision 0027).
     */
    public record Options(int runs, boolean floatGraph) {
        public Options {
            if (runs < 0) {
                throw new QwtException("--runs must be 0 or more, got " + runs);
            }
        }

        /** With the float model's graph. */
        public Options(int runs) {
            this(runs, true);
        }
    }

    /** A model and the file it is (or will be) stored in; the path may be null for an unsaved model. */
    public record Subject(Model model, Path path) {
    }

    /**
     * What quantize knows and verify alone cannot: the model before compensation, the fits, the
     * calibration set, and what quantize has measured of the same model on the same samples: the
     * output fidelity, ORT's optimized graph of the quantized model, the per-layer figures, both models'
     * latency and the quantized model's layers matched to the float model's (each null: verify makes it);
     * and every decision its stages made against a layer or a rewrite, with the reason. Where quantize
     * gives the per-layer figures, {@code layerFiguresBefore} null means it chose not to measure the
     * model before compensation, and the report has no such figures.
     */
    public record QuantizeRun(Model uncompensated, Compensator.Result compensation, String method,
            String calibration, int calibrationSamples, List<Fidelity.OutputFidelity> outputs, Model optimized,
            List<Report.Decision> decisions, Report.Accuracy accuracy,
            Map<String, LayerFidelityMeter.Figures> layerFigures, Map<String, LayerFidelityMeter.Figures> layerFiguresBefore,
            LatencyMeter.Result latency, LayerCounterparts.Result matched) {
        /** Without an accuracy section; per-layer fidelity measured by verify. */
        public QuantizeRun(Model uncompensated, Compensator.Result compensation, String method, String calibration,
                int calibrationSamples, List<Fidelity.OutputFidelity> outputs, Model optimized,
                List<Report.Decision> decisions) {
            this(uncompensated, compensation, method, calibration, calibrationSamples, outputs, optimized, decisions, null,
                    null, null, null, null);
        }
    }

    public static Report verify(Subject floatSubject, Subject quantSubject, CalibrationSource data, String dataSource,
            Options options, QuantizeRun run, Progress progress) {
        Model f = floatSubject.model();
        Model q = quantSubject.model();
        requireSameSignature(f, q);
        if (data.size() == 0) {
            throw new QwtException("no samples to verify on: " + dataSource);
        }
        // The output fidelity's sessions time the latency runs too (no sessions and warm-up runs of their own).
        LatencyMeter.Result measuredLatency = null;
        List<Fidelity.OutputFidelity> outputs;
        if (run != null && run.outputs() != null) {
            outputs = run.outputs();
        } else if (options.runs() > 0) {
            Fidelity.Timed t = Fidelity.measureTimed(f, q, data, options.runs(), progress);
            outputs = t.outputs();
            measuredLatency = t.latency();
        } else {
            outputs = Fidelity.measure(f, q, data, progress);
        }

        // Matching reads every weight of both models (its cosines): quantize has matched them for the per-layer figures.
        LayerCounterparts.Result matched = run != null && run.matched() != null ? run.matched()
                : LayerCounterparts.match(f, QuantizedLayers.find(q));
        int found = matched.matched().size() + matched.unmatched().size();
        Map<String, LayerFidelityMeter.Figures> after = matched.matched().isEmpty() ? Map.of()
                : run != null && run.layerFigures() != null && run.layerFigures().keySet().containsAll(
                        matched.matched().stream().map(m -> m.layer().node()).toList()) ? run.layerFigures()
                : LayerFidelityMeter.measure(f, q, matched.matched(), data, progress, "per-layer fidelity");
        Map<String, LayerFidelityMeter.Figures> before = Map.of();
        if (run != null && run.uncompensated() != null && !matched.matched().isEmpty()) {
            before = run.layerFiguresBefore() != null ? run.layerFiguresBefore()
                    : run.layerFigures() != null ? Map.of()
                    : measureBefore(f, run.uncompensated(), matched.matched(), data, progress);
        }

        Model fOpt = options.floatGraph() ? OrtKernels.optimized(f) : null;
        Model qOpt = run != null && run.optimized() != null ? run.optimized() : OrtKernels.optimized(q);
        List<Report.Unfused> unfused = new ArrayList<>();
        Map<String, String> reasons = new HashMap<>();
        Map<String, String> opTypes = new HashMap<>();
        for (NodeProto n : qOpt.graph().getNodeList()) {
            opTypes.put(n.getName(), n.getOpType());
        }
        for (String name : OrtKernels.unfusedLayers(qOpt)) {
            String reason = FusionDiagnosis.reason(q, name);
            reasons.put(name, reason);
            unfused.add(new Report.Unfused(name, opTypes.get(name), reason));
        }

        Map<String, ChannelFit> fits = run == null || run.compensation() == null ? Map.of() : run.compensation().fits();
        List<Report.LayerFidelity> layers = new ArrayList<>();
        for (LayerCounterparts.Match m : matched.matched()) {
            String node = m.layer().node();
            LayerFidelityMeter.Figures a = after.get(node);
            LayerFidelityMeter.Figures b = before.get(node);
            ChannelFit fit = fits.get(node);
            layers.add(new Report.LayerFidelity(node, m.layer().opType(), m.layer().style().name().toLowerCase(),
                    m.floatNode(), m.matchedBy(), m.weightCosine(), a.meanDb(), a.minDb(), a.localMeanDb(),
                    b == null ? null : b.meanDb(), b == null ? null : b.localMeanDb(), !reasons.containsKey(node),
                    reasons.get(node), fit == null ? null : summary(fit.a()), fit == null ? null : summary(fit.b()),
                    fit == null ? null : fit.sseBefore(), fit == null ? null : fit.sseAfter()));
        }
        layers.sort(Comparator.comparingDouble(Verifier::severity));
        List<String> unmatched = new ArrayList<>();
        for (QuantizedLayers.Layer l : matched.unmatched()) {
            unmatched.add(l.opType() + " '" + l.node() + "'");
        }

        Report.Runtime runtime = new Report.Runtime(ortVersion(), "extended", fOpt == null ? null : graph(fOpt),
                graph(qOpt), unfused);

        long fBytes = size(floatSubject);
        long qBytes = size(quantSubject);
        LatencyMeter.Result lat = run != null && run.latency() != null ? run.latency()
                : measuredLatency != null ? measuredLatency
                : options.runs() > 0 ? LatencyMeter.measure(f, q, data, options.runs(), progress) : null;
        // Compensation's own output against its input: the written model may also be lowered to integer operators
        // or have int8 embedding tables, which change the node count for reasons of their own.
        Integer nodesAdded = run == null || run.uncompensated() == null ? null
                : (run.compensation() != null && run.compensation().model() != null ? run.compensation().model() : q)
                        .graph().getNodeCount() - run.uncompensated().graph().getNodeCount();
        Report.Cost cost = lat == null ? new Report.Cost(fBytes, qBytes, (double) qBytes / fBytes, 0, null, 0, null, null,
                null, nodesAdded)
                : new Report.Cost(fBytes, qBytes, (double) qBytes / fBytes, lat.runs(), lat.sample(), lat.samples(),
                        lat.floatLatency(), lat.quantLatency(), lat.speedup(), nodesAdded);

        return new Report(Report.SCHEMA_VERSION, Version.TOOL + " " + Version.version(),
                modelFile(floatSubject, fBytes), modelFile(quantSubject, qBytes),
                new Report.DataSet(dataSource, data.size()), provenance(q, run), outputs,
                new Report.Layers(found, matched.matched().size(), layers, unmatched, inSubgraphs(q)), runtime, cost,
                compensation(run, nodesAdded), run == null || run.decisions() == null ? List.of() : run.decisions(),
                run == null ? null : run.accuracy(), null);
    }

    /** Quantized layers inside the subgraphs of {@code q}'s nodes (If branches, Loop and Scan bodies), at any depth. */
    static int inSubgraphs(Model q) {
        int[] count = {0};
        Subgraphs.forEachGraph(q.graph(), g -> {
            if (g != q.graph()) {
                count[0] += QuantizedLayers.find(q.withGraph(g)).size();
            }
        });
        return count[0];
    }

    /** Worst first: the layer's own error where measured, else its accumulated error. */
    private static double severity(Report.LayerFidelity l) {
        return l.localSqnrDb() != null ? l.localSqnrDb() : l.sqnrDb();
    }

    private static Map<String, LayerFidelityMeter.Figures> measureBefore(Model f, Model uncompensated,
            List<LayerCounterparts.Match> matches, CalibrationSource data, Progress progress) {
        List<LayerCounterparts.Match> same = beforeMatches(uncompensated, matches);
        return same.isEmpty() ? Map.of()
                : LayerFidelityMeter.measure(f, uncompensated, same, data, progress, "per-layer fidelity before compensation");
    }

    /** The matches of the compensated model's layers carried over to the same layers of the model before compensation. */
    public static List<LayerCounterparts.Match> beforeMatches(Model uncompensated, List<LayerCounterparts.Match> matches) {
        // The uncompensated model has the same layer nodes (compensation changes only constants).
        Set<String> names = new TreeSet<>();
        uncompensated.graph().getNodeList().forEach(n -> names.add(n.getName()));
        Map<String, QuantizedLayers.Layer> layers = new HashMap<>();
        for (QuantizedLayers.Layer l : QuantizedLayers.find(uncompensated)) {
            layers.put(l.node(), l);
        }
        List<LayerCounterparts.Match> same = new ArrayList<>();
        for (LayerCounterparts.Match m : matches) {
            QuantizedLayers.Layer l = layers.get(m.layer().node());
            if (l != null) {
                same.add(new LayerCounterparts.Match(l, m.floatNode(), m.floatOutput(), m.floatRelu(), m.floatWeight(),
                        m.matchedBy(), m.weightCosine()));
            }
        }
        return same;
    }

    private static void requireSameSignature(Model f, Model q) {
        List<String> fin = names(f.graph().getInputList(), f);
        List<String> qin = names(q.graph().getInputList(), q);
        if (!new TreeSet<>(fin).equals(new TreeSet<>(qin))) {
            throw new QwtException("the models have different inputs: float " + fin + ", quantized " + qin);
        }
        List<String> fout = names(f.graph().getOutputList(), null);
        List<String> qout = names(q.graph().getOutputList(), null);
        if (!new TreeSet<>(fout).equals(new TreeSet<>(qout))) {
            throw new QwtException("the models have different outputs: float " + fout + ", quantized " + qout);
        }
    }

    /** Value names, leaving out graph inputs that are initializers (old exporters list those too). */
    private static List<String> names(List<ValueInfoProto> values, Model m) {
        Set<String> inits = new java.util.HashSet<>();
        if (m != null) {
            m.graph().getInitializerList().forEach(t -> inits.add(t.getName()));
        }
        List<String> out = new ArrayList<>();
        for (ValueInfoProto v : values) {
            if (!inits.contains(v.getName())) {
                out.add(v.getName());
            }
        }
        return out;
    }

    private static Report.Graph graph(Model optimized) {
        Map<String, Integer> counts = OrtKernels.opCounts(optimized);
        List<Report.OpCount> ops = new ArrayList<>();
        counts.forEach((k, v) -> ops.add(new Report.OpCount(k, v)));
        List<Report.Node> nodes = new ArrayList<>();
        for (NodeProto n : optimized.graph().getNodeList()) {
            nodes.add(new Report.Node(n.getOpType(), n.getName()));
        }
        return new Report.Graph(nodes.size(), OrtKernels.count(counts, OrtKernels.INTEGER_OPS), ops, nodes);
    }

    private static long size(Subject s) {
        if (s.path() != null && Files.isRegularFile(s.path())) {
            try {
                return ModelIO.fileBytes(s.path());
            } catch (IOException e) {
                throw new QwtException("cannot read the size of " + s.path() + ": " + e.getMessage(), e);
            }
        }
        return s.model().serializedSize();
    }

    private static Report.ModelFile modelFile(Subject s, long bytes) {
        return new Report.ModelFile(s.path() == null ? null : s.path().toString(), bytes, s.model().graph().getNodeCount());
    }

    private static Report.Provenance provenance(Model q, QuantizeRun run) {
        Map<String, String> meta = new java.util.LinkedHashMap<>();
        List<Report.Entry> entries = new ArrayList<>();
        for (StringStringEntryProto e : q.proto().getMetadataPropsList()) {
            meta.put(e.getKey(), e.getValue());
            entries.add(new Report.Entry(e.getKey(), e.getValue()));
        }
        return new Report.Provenance(meta.get("qwt.tool"), meta.get("qwt.version"), meta.get("qwt.options"),
                run != null ? run.calibration() : meta.get("qwt.calibration"),
                run != null ? Integer.valueOf(run.calibrationSamples()) : parseInt(meta.get("qwt.calibration_samples")),
                entries);
    }

    private static Integer parseInt(String s) {
        try {
            return s == null ? null : Integer.valueOf(s.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static Report.Compensation compensation(QuantizeRun run, Integer nodesAdded) {
        if (run == null || run.compensation() == null) {
            return null;
        }
        Compensator.Result c = run.compensation();
        List<Double> gains = new ArrayList<>();
        for (ChannelFit fit : c.fits().values()) {
            for (double a : fit.a()) {
                gains.add(a);
            }
        }
        double[] all = gains.stream().mapToDouble(Double::doubleValue).toArray();
        return new Report.Compensation(run.method(), c.fits().size(), all.length, c.sseBefore(), c.sseAfter(),
                nodesAdded == null ? 0 : nodesAdded, all.length == 0 ? null : summary(all), histogram(all, GAIN_BINS));
    }

    static Report.Summary summary(double[] v) {
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        double sum = 0;
        for (double x : v) {
            min = Math.min(min, x);
            max = Math.max(max, x);
            sum += x;
        }
        return new Report.Summary(v.length, min, v.length == 0 ? Double.NaN : sum / v.length, max);
    }

    static Report.Histogram histogram(double[] v, int bins) {
        List<Report.Bin> out = new ArrayList<>();
        if (v.length == 0) {
            return new Report.Histogram(out);
        }
        Report.Summary s = summary(v);
        double lo = s.min();
        double hi = s.max() > s.min() ? s.max() : s.min() + 1e-6;
        int[] counts = new int[bins];
        for (double x : v) {
            counts[Math.min(bins - 1, (int) ((x - lo) / (hi - lo) * bins))]++;
        }
        for (int i = 0; i < bins; i++) {
            out.add(new Report.Bin(lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins, counts[i]));
        }
        return new Report.Histogram(out);
    }

    private static String ortVersion() {
        try {
            return OrtEnvironment.getEnvironment().getVersion();
        } catch (RuntimeException e) {
            return null;
        }
    }
}
