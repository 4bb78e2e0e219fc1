package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.Batches;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.MeasuredOutputs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model's output error against the float model on a fixed set of samples: Σ over float outputs of
 * ‖y − y_float‖² / ‖y_float‖² (summed over the samples before dividing, so that one near-zero sample
 * cannot dominate). The float outputs are computed once and kept; what compensation's acceptance
 * compares candidate models by.
 */
final class OutputError {
    private final List<Sample> samples;
    private final List<String> outputs = new ArrayList<>();
    private final List<Map<String, float[]>> reference = new ArrayList<>();
    /** Per sample and output, ‖y_float‖²: each candidate's cosines read it rather than summing it again. */
    private final double[][] squares;
    /** Per output, Σ over the samples of ‖y_float‖²: every error's denominator. */
    private final double[] den;

    /** The measured tensors that are not graph outputs, which every session here exposes. */
    private final List<String> beyond;

    /** Candidates measured on sessions of their own on the grid, or as ORT runs them (see {@link Grid}). */
    private final boolean onGrid;

    OutputError(Model floatModel, List<Sample> samples, boolean onGrid) {
        this.onGrid = onGrid;
        this.samples = List.copyOf(samples);
        // Every output; a model with no float output, on the float tensors its outputs are computed from.
        beyond = MeasuredOutputs.beyondGraphOutputs(floatModel);
        if (beyond.isEmpty()) {
            for (ValueInfoProto v : floatModel.graph().getOutputList()) {
                outputs.add(v.getName());
            }
        } else {
            outputs.addAll(MeasuredOutputs.of(floatModel));
        }
        try (OrtRunner f = new OrtRunner(floatModel, beyond)) {
            for (Sample s : this.samples) {
                Map<String, float[]> out = new LinkedHashMap<>();
                f.run(s, outputs).forEach((k, v) -> out.put(k, v.data()));
                reference.add(out);
            }
        }
        squares = new double[reference.size()][outputs.size()];
        den = new double[outputs.size()];
        for (int i = 0; i < reference.size(); i++) {
            for (int o = 0; o < outputs.size(); o++) {
                squares[i][o] = squares(reference.get(i).get(outputs.get(o)));
                den[o] += squares[i][o];
            }
        }
    }

    private static double squares(float[] x) {
        double s = 0;
        for (float v : x) {
            s += (double) v * v;
        }
        return s;
    }

    int size() {
        return samples.size();
    }

    /** The relative squared output error of {@code model} (same inputs and output names as the float model). */
    double of(Model model) {
        return perSample(model).total();
    }

    /**
     * A model's error split by sample: sample i's part is Σ over outputs of ‖y_i − y_float,i‖² / Σ_j
     * ‖y_float,j‖² (the denominator over all samples, as in the total), so that the parts sum to
     * {@link #of} and two models' parts can be compared sample by sample; with each sample's cosine
     * between the model's and the float model's outputs (the mean over outputs), which a smaller
     * squared error alone does not promise (shrinking an output toward zero lowers the one and not
     * the other).
     */
    record Errors(double[] parts, double[] cosines) {
        double total() {
            double t = 0;
            for (double p : parts) {
                t += p;
            }
            return t;
        }
    }

    /** The output error of {@code model} by sample (see {@link Errors}). */
    Errors perSample(Model model) {
        try (OrtRunner q = OrtRunner.of(model, beyond, false, onGrid)) {
            return errors(q, Map.of());
        }
    }

    /**
     * An evaluator of models that differ from {@code base} at most in the values of the initializers
     * named {@code params}: one ORT session in which those initializers are graph inputs, fed with each
     * model's values. Acceptance compares several such models per stage (refitted scales, a shift, a fit),
     * and a session per model was most of {@code compensate}'s time (195 sessions on MiniLM). The
     * session's kernels are not always those of a session of the model's own (a Q/DQ with a fed scale is
     * not folded into QLinearConv, which needs constant scales; MatMulIntegerToFloat takes them as inputs),
     * so errors are compared only between models measured by the same evaluator, and where the two would
     * differ by more than rounding, both measure on the grid ({@link Grid}). A model that differs otherwise
     * (a fold that copied a shared initializer) gets a session of its own.
     */
    Variants variants(Model base, Set<String> params) {
        return new Variants(base, params, base, List.of());
    }

    /**
     * One evaluator for a whole compensation run, whose session also measures: {@code measuring} is
     * {@code base} with nodes added that only compute what a measuring pass reads (targets, dequantized
     * outputs), and {@code exposed} are those tensors, which a pass on {@link Variants#runner} fetches
     * with {@link Variants#inputsOf} fed. Every stage's candidates differ from {@code base} only in
     * {@code params} (all stages' weight scales, biases and requantization scales), so one session serves
     * every stage's acceptance and measuring pass, where two sessions per stage would be most of
     * {@code compensate}'s time (decision 0017).
     * Null where ORT will not run the model with those values fed (a kernel that takes them only as
     * constants): the stages then evaluate on sessions of their own.
     */
    Variants shared(Model base, Set<String> params, Model measuring, Collection<String> exposed) {
        Variants v = new Variants(base, params, measuring, exposed);
        try {
            v.probe();
        } catch (RuntimeException e) {
            v.close();
            return null;
        }
        return v;
    }

    final class Variants implements AutoCloseable {
        private final Model base;
        private final Model session;
        private final List<String> exposed;
        private final Map<String, TensorProto> baseInitializers = new HashMap<>();
        private final Set<String> params = new LinkedHashSet<>();
        private OrtRunner runner;
        private boolean unusable;
        /** The base's errors, measured when the shared evaluator is made (the first stage's starting point). */
        private Errors probed;

        private Variants(Model base, Set<String> names, Model session, Collection<String> exposed) {
            this.base = base;
            this.session = session;
            this.exposed = List.copyOf(exposed);
            for (TensorProto t : base.graph().getInitializerList()) {
                baseInitializers.put(t.getName(), t);
                if (names.contains(t.getName())) {
                    params.add(t.getName());
                }
            }
        }

        /** {@code model}'s errors, as {@link #perSample} gives them, on this evaluator's session where it can. */
        Errors perSample(Model model) {
            return model == base && probed != null ? probed : perSampleBeating(model, null);
        }

        /**
         * {@code model}'s errors as {@link #perSample} gives them, or null where its gains over {@code toBeat}
         * (null: none to beat) are already not positive on the samples at even positions, which alone rules
         * the change out ({@link StageAcceptance#keeps} asks for positive gains in both halves): the odd ones then
         * do not run. Most candidates are ruled out so, and the decisions are those of measuring all samples.
         */
        Errors perSampleBeating(Model model, Errors toBeat) {
            Map<String, HostTensor> fed = inputsOf(model);
            if (fed == null) {
                return OutputError.this.perSample(model);
            }
            try {
                return OutputError.this.errors(runner(), fed, toBeat);
            } catch (RuntimeException e) {
                // A kernel that takes these values only as constants (ORT may insist on that for some QOperator
                // node): measured as before, a session per model.
                unusable = true;
                return OutputError.this.perSample(model);
            }
        }

        /** Measures the base on this evaluator's session, failing where ORT cannot take the values fed. */
        private void probe() {
            Map<String, HostTensor> fed = inputsOf(base);
            if (fed == null) {
                throw new IllegalArgumentException("the evaluator has no parameters");
            }
            probed = OutputError.this.errors(runner(), fed, null);
        }

        /**
         * What a pass over data feeds beside each sample's inputs to run {@code model} on this evaluator's
         * session ({@link #runner}), or null where it cannot: the model differs from the base in more than
         * the parameters' values, or the session failed before.
         */
        Map<String, HostTensor> inputsOf(Model model) {
            Map<String, TensorProto> values = unusable ? null : paramValues(model);
            return values == null ? null : fed(values);
        }

        /** Whether {@link #inputsOf} gives {@code model}'s values, without making them. */
        boolean takes(Model model) {
            return !unusable && paramValues(model) != null;
        }

        /** The session, with the parameters as inputs and the measured tensors exposed. */
        OrtRunner runner() {
            if (runner == null) {
                // On the grid, no Q/DQ fuses. Elsewhere a fed scale keeps QLinearConv out, not MatMulIntegerToFloat,
                // which takes its scales as inputs: there the fused kernel is the grid up to rounding.
                List<String> all = new ArrayList<>(exposed);
                beyond.stream().filter(n -> !exposed.contains(n)).forEach(all::add);
                runner = OrtRunner.of(withParamsAsInputs(), all, !exposed.isEmpty(), onGrid);
            }
            return runner;
        }

        private Map<String, HostTensor> fed(Map<String, TensorProto> values) {
            Map<String, HostTensor> fed = new LinkedHashMap<>();
            values.forEach((k, v) -> fed.put(k, Tensors.toHost(v)));
            return fed;
        }

        /** The parameters' values in {@code model}, or null where it differs from the base in anything else. */
        private Map<String, TensorProto> paramValues(Model model) {
            if (params.isEmpty()) {
                return null;
            }
            GraphProto g = model.graph();
            GraphProto b = base.graph();
            if (g.getInitializerCount() != b.getInitializerCount() || !g.getNodeList().equals(b.getNodeList())
                    || !g.getInputList().equals(b.getInputList()) || !g.getOutputList().equals(b.getOutputList())) {
                return null;
            }
            Map<String, TensorProto> values = new LinkedHashMap<>();
            for (TensorProto t : g.getInitializerList()) {
                TensorProto was = baseInitializers.get(t.getName());
                if (was == null) {
                    return null;
                }
                if (params.contains(t.getName())) {
                    if (!t.getDimsList().equals(was.getDimsList()) || t.getDataType() != was.getDataType()) {
                        return null;
                    }
                    values.put(t.getName(), t);
                } else if (t != was && !t.equals(was)) {
                    return null;
                }
            }
            return values;
        }

        private Model withParamsAsInputs() {
            Model m = onGrid ? scalesAsFactors(session, params) : session;
            GraphProto.Builder g = m.graph().toBuilder().clearInitializer();
            for (TensorProto t : m.graph().getInitializerList()) {
                if (!params.contains(t.getName())) {
                    g.addInitializer(t);
                    continue;
                }
                TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
                t.getDimsList().forEach(d -> shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d)));
                g.addInput(ValueInfoProto.newBuilder().setName(t.getName()).setType(TypeProto.newBuilder()
                        .setTensorType(TypeProto.Tensor.newBuilder().setElemType(t.getDataType()).setShape(shape))));
            }
            return m.withGraph(g.build());
        }

        @Override
        public void close() {
            if (runner != null) {
                runner.close();
            }
        }
    }

    /** The creator recorded on the nodes {@link #scalesAsFactors} adds. */
    private static final String FACTORS = "output-error-scale-factors";

    /**
     * {@code m} with each fed weight scale of a 2-D MatMul (or bias-free Gemm) weight moved out of its
     * DequantizeLinear: the DequantizeLinear reads the base's scale, a constant (so ORT dequantizes
     * the weight once, not on every run), and the layer's output is multiplied by the fed scale over
     * the base's, per output channel. The same product up to float rounding; without it, on the grid
     * (no Q/DQ fused), every run would dequantize every fed weight again, several times the run's own work
     * on an encoder.
     * The layer's output keeps its name, now the product's, so what reads or exposes it is unchanged.
     */
    static Model scalesAsFactors(Model m, Set<String> params) {
        GraphEditor g = new GraphEditor(m.graph());
        boolean changed = false;
        for (NodeProto dq : List.copyOf(g.nodes())) {
            if (!dq.getOpType().equals("DequantizeLinear") || dq.getInputCount() < 2
                    || !params.contains(dq.getInput(1))) {
                continue;
            }
            TensorProto w = g.initializer(dq.getInput(0));
            TensorProto scale = g.initializer(dq.getInput(1));
            List<NodeProto> readers = g.consumers(dq.getOutput(0));
            if (w == null || w.getDimsCount() != 2 || scale == null || scale.getDimsCount() > 1 || readers.isEmpty()
                    || g.isGraphOutput(dq.getOutput(0)) || g.consumers(dq.getInput(1)).size() != 1) {
                continue;
            }
            boolean layers = true;
            int axis = (int) Nodes.intAttr(dq, "axis", 1);
            for (NodeProto r : readers) {
                boolean transB = r.getOpType().equals("Gemm") && Nodes.intAttr(r, "transB", 0) == 1;
                boolean outputAxis = scale.getDimsCount() == 0 || (transB ? axis == 0 : axis == 1);
                // A Gemm's bias input is added inside it, where a factor on its output would scale it too.
                boolean gemmWithoutBias = r.getOpType().equals("Gemm")
                        && (r.getInputCount() < 3 || r.getInput(2).isEmpty());
                layers &= (r.getOpType().equals("MatMul") || gemmWithoutBias) && r.getInputCount() >= 2
                        && r.getInput(1).equals(dq.getOutput(0)) && !r.getInput(0).equals(dq.getOutput(0)) && outputAxis;
            }
            if (!layers) {
                continue;
            }
            String fed = dq.getInput(1);
            String constant = g.names().fresh(fed + "_base");
            g.putInitializer(scale.toBuilder().setName(constant).build());
            NodeProto dqConst = g.replace(dq, dq.toBuilder().setInput(1, constant).build());
            String factor = g.names().fresh(fed + "_factor");
            g.insertBefore(dqConst, Nodes.node("Div", factor, List.of(fed, constant), List.of(factor), FACTORS));
            for (NodeProto r : readers) {
                String out = r.getOutput(0);
                String raw = g.names().fresh(out + "_unscaled");
                NodeProto unscaled = g.replace(r, r.toBuilder().setOutput(0, raw).build());
                g.insertAfter(unscaled, Nodes.node("Mul", g.names().fresh(out + "_scaled"), List.of(raw, factor),
                        List.of(out), FACTORS));
            }
            changed = true;
        }
        return changed ? m.withGraph(g.build()) : m;
    }

    /** The errors of the model {@code q} runs, with {@code extra} fed beside each sample's inputs. */
    private Errors errors(OrtRunner q, Map<String, HostTensor> extra) {
        return errors(q, extra, null);
    }

    /**
     * As {@link #errors(OrtRunner, Map)}; with a {@code base} to beat (and samples enough to split, as
     * {@link StageAcceptance#gains} splits them), the samples at even positions run first and null is
     * returned where the gains over {@code base} on them are not positive in both measures.
     */
    private Errors errors(OrtRunner q, Map<String, HostTensor> extra, Errors base) {
        int n = samples.size();
        double[][] num = new double[n][outputs.size()];
        double[] cosines = new double[n];
        boolean halves = base != null && n >= StageAcceptance.MIN_SPLIT;
        try (OrtRunner fed = q.fixing(extra)) {
            if (!halves) {
                run(fed, 0, 1, num, cosines);
            } else {
                run(fed, 0, 2, num, cosines);
                if (!evenGains(base, parts(num), cosines)) {
                    return null;
                }
                run(fed, 1, 2, num, cosines);
            }
        }
        return new Errors(parts(num), cosines);
    }

    /**
     * Runs the samples at positions first, first + step, ... and adds their errors: the session's runs
     * in flight as it takes them (a sentence leaves ORT's threads mostly idle), the sums taken here.
     */
    private void run(OrtRunner fed, int first, int step, double[][] num, double[] cosines) {
        List<Sample> some = new ArrayList<>();
        for (int i = first; i < samples.size(); i += step) {
            some.add(samples.get(i));
        }
        Batches.run(fed, some, 1, outputs, Progress.NONE,
                (b, got) -> errors(first + step * b.ordinals().get(0), got, num, cosines));
    }

    private double[] parts(double[][] num) {
        double[] parts = new double[num.length];
        for (int i = 0; i < parts.length; i++) {
            for (int o = 0; o < den.length; o++) {
                parts[i] += den[o] > 0 ? num[i][o] / den[o] : num[i][o];
            }
        }
        return parts;
    }

    /**
     * Whether the gains over {@code base} summed over the even positions are positive for the squared
     * error and for 1 − cosine, summed as {@link StageAcceptance#gains} sums them.
     */
    private static boolean evenGains(Errors base, double[] parts, double[] cosines) {
        double error = 0;
        double angle = 0;
        for (int i = 0; i < parts.length; i += 2) {
            error += base.parts()[i] - parts[i];
            angle += (1 - base.cosines()[i]) - (1 - cosines[i]);
        }
        return error > 0 && angle > 0;
    }

    /** Adds sample {@code i}'s outputs {@code got} to the sums of the errors. */
    private void errors(int i, Map<String, FloatTensor> got, double[][] num, double[] cosines) {
        for (int o = 0; o < outputs.size(); o++) {
            float[] want = reference.get(i).get(outputs.get(o));
            float[] have = got.get(outputs.get(o)).data();
            if (want.length != have.length) {
                throw new IllegalStateException("output " + outputs.get(o) + " has " + have.length
                        + " values, the float model's " + want.length);
            }
            double dot = 0;
            double hh = 0;
            double ww = squares[i][o];
            for (int k = 0; k < want.length; k++) {
                double d = (double) have[k] - want[k];
                num[i][o] += d * d;
                dot += (double) have[k] * want[k];
                hh += (double) have[k] * have[k];
            }
            cosines[i] += (hh > 0 && ww > 0 ? dot / Math.sqrt(hh * ww) : hh == ww ? 1 : 0) / outputs.size();
        }
    }
}
