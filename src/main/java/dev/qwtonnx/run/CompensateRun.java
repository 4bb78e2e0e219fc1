package dev.qwtonnx.run;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.cwac.ForeignLayers;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.InlineFunctions;
import dev.qwtonnx.prepare.IrVersionForOrt;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.SortNodes;
import dev.qwtonnx.verify.Fidelity;
import java.util.ArrayList;
import java.util.List;

/**
 * The compensate run: CWAC folded into a QDQ or QOperator INT8 model another tool made, given the
 * float model it was made from. Layers are paired by weights, measured, fitted and folded into their
 * own weight-scale and bias initializers; nodes, names and order stay exactly as they were.
 */
public final class CompensateRun {
    private CompensateRun() {
    }

    /** The stages of one compensate run; with a {@code destination}, the result is saved and measured. */
    public static List<Stage> stages(CwacOptions cwac, Destination destination) {
        List<Stage> stages = new ArrayList<>(List.of(
                new CheckInputs(),                    // both models pass the structural checker
                new PrepareReference(),               // the float model's functions inlined, Constant weights as initializers
                new NameInt8Nodes(),                  // unnamed or twice-named nodes named, to find layers by
                new PairLayers(),                     // each quantized layer paired with a float layer by weights
                new Compensate(cwac),                 // measure, fit, fold (the same compensator quantize uses)
                new CheckStage(COMPENSATED)));        // the structural checker on the result
        if (destination != null) {
            stages.addAll(List.of(
                    new SaveStage(COMPENSATED, DESTINATION),
                    new FidelityBeforeAfter()));      // the input's and the result's, one float pass for both
        }
        return List.copyOf(stages);
    }

    /**
     * What compensate returns: the compensated model, the float model it was measured against, the
     * fits and the layers left alone, each stage's time, and with a destination the held-out
     * fidelity of the input and of the result.
     */
    public record Result(Model model, Model floatModel, Compensator.Result compensation, List<StageRunner.Timing> timings,
            List<Fidelity.OutputFidelity> fidelityBefore, List<Fidelity.OutputFidelity> fidelityAfter) {
        /**
         * A {@code warning:} line per output whose held-out fidelity after compensation is poor, by quantize's
         * thresholds ({@link FidelityCheckStage}). Compensation corrects what rounding leaves; a model its
         * quantization broke (a range that flattens an activation, say) stays broken, and the user is told so, as
         * quantize tells of its own.
         */
        public List<String> warnings() {
            return FidelityCheckStage.poor(fidelityAfter).stream().map(o -> String.format(java.util.Locale.ROOT,
                    "warning: poor fidelity of output '%s' after compensation: SQNR %.2f dB, cosine %.5f (below %.0f dB "
                    + "or %.2f); compensation corrects rounding errors, not a broken quantization: `qwt-onnx verify` "
                    + "names the layers whose own error is worst, `qwt-onnx quantize` quantizes the float model itself",
                    o.output(), o.meanSqnrDb(), o.meanCosine(), FidelityCheckStage.POOR_SQNR_DB,
                    FidelityCheckStage.POOR_COSINE)).toList();
        }
    }

    /**
     * As {@link #run(Model, Model, CwacOptions, CalibrationSource, Destination, RunContext)}, the
     * stages judged on the context's held-out samples (which the fidelity is then measured on too).
     */
    public static Result run(Model floatModel, Model int8, CwacOptions cwac, Destination destination, RunContext ctx) {
        return run(floatModel, int8, cwac, null, destination, ctx);
    }

    /**
     * Compensates {@code int8} on the context's calibration samples, each stage judged on
     * {@code acceptance} (null: the context's held-out samples; none there: a share of the
     * calibration set the fits then do not use), the fidelity measured on the context's held-out
     * samples.
     */
    public static Result run(Model floatModel, Model int8, CwacOptions cwac, CalibrationSource acceptance,
            Destination destination, RunContext ctx) {
        if (ctx.calibration().size() == 0) {
            throw new QwtException("the calibration set is empty");
        }
        // Nodes written out of order (which ORT sorts itself) are sorted, not reported; the float model, only
        // measured, has its nodes named as quantize names them (its layers are found by name); both are read at an
        // IR version ORT reads, and the result is written at it.
        Facts facts = new Facts().put(FLOAT, NameNodes.apply(SortNodes.apply(IrVersionForOrt.apply(floatModel))))
                .put(INT8, SortNodes.apply(IrVersionForOrt.apply(int8)));
        if (acceptance != null) {
            facts.put(ACCEPTANCE, acceptance);
        }
        if (destination != null) {
            facts.put(DESTINATION, destination);
        }
        List<StageRunner.Timing> timings = StageRunner.run("compensate", stages(cwac, destination), ctx, facts);
        return new Result(facts.get(COMPENSATED), facts.get(REFERENCE), facts.get(COMPENSATION), timings,
                facts.has(FIDELITY_BEFORE) ? facts.get(FIDELITY_BEFORE) : List.of(),
                facts.has(FIDELITY_AFTER) ? facts.get(FIDELITY_AFTER) : List.of());
    }

    static final Fact<Model> FLOAT = Fact.named("float model");
    static final Fact<Model> INT8 = Fact.named("INT8 model");
    static final Fact<Destination> DESTINATION = Fact.named("destination");
    static final Fact<CalibrationSource> ACCEPTANCE = Fact.named("acceptance samples");
    static final Fact<Model> REFERENCE = Fact.named("float reference");
    static final Fact<Model> INT8_NAMED = Fact.named("INT8 model, every node named");
    static final Fact<ForeignLayers.Result> PAIRED = Fact.named("paired layers");
    static final Fact<Compensator.Result> COMPENSATION = Fact.named("compensation");
    static final Fact<Model> COMPENSATED = Fact.named("compensated model");
    static final Fact<List<Fidelity.OutputFidelity>> FIDELITY_BEFORE = Fact.named("fidelity before");
    static final Fact<List<Fidelity.OutputFidelity>> FIDELITY_AFTER = Fact.named("fidelity after");

    /**
     * The held-out fidelity of the input and of the result: the float model runs once per sample for
     * both, where a pass each started it twice.
     */
    private static final class FidelityBeforeAfter extends BaseStage {
        FidelityBeforeAfter() {
            super("fidelity", List.of(REFERENCE, INT8, COMPENSATED), List.of(FIDELITY_BEFORE, FIDELITY_AFTER));
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            List<List<Fidelity.OutputFidelity>> f = Fidelity.measureEach(facts.get(REFERENCE),
                    List.of(facts.get(INT8), facts.get(COMPENSATED)), ctx.measured(), ctx.progress());
            facts.put(FIDELITY_BEFORE, f.get(0));
            facts.put(FIDELITY_AFTER, f.get(1));
        }
    }

    private static final class CheckInputs extends BaseStage {
        CheckInputs() {
            super("check-inputs", List.of(FLOAT, INT8), List.of());
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            ModelChecker.check(facts.get(FLOAT));
            ModelChecker.check(facts.get(INT8));
        }
    }

    /**
     * Local functions inlined and weights held in Constant nodes made initializers, so that the float model's
     * layers can be compared; it is only measured.
     */
    private static final class PrepareReference extends BaseStage {
        PrepareReference() {
            super("prepare-reference", List.of(FLOAT), List.of(REFERENCE));
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            facts.put(REFERENCE, new Pipeline(List.of(new InlineFunctions(), new ConstantToInitializer()), false)
                    .run(facts.get(FLOAT), ctx.log()));
        }
    }

    /**
     * Layers are found, paired and folded by node name: an INT8 model whose nodes have no names (ORT's quantizer
     * keeps a float model's unnamed nodes unnamed) is named as quantize names a float model.
     */
    private static final class NameInt8Nodes extends BaseStage {
        NameInt8Nodes() {
            super("name-nodes", List.of(INT8), List.of(INT8_NAMED));
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            facts.put(INT8_NAMED, NameNodes.apply(facts.get(INT8)));
        }
    }

    private static final class PairLayers extends BaseStage {
        PairLayers() {
            super("pair-layers", List.of(REFERENCE, INT8_NAMED), List.of(PAIRED));
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            ForeignLayers.Result mapped = ForeignLayers.map(facts.get(REFERENCE), facts.get(INT8_NAMED));
            for (String s : mapped.skipped()) {
                ctx.log().accept("left as it was: " + s);
                ctx.reject(name(), s, "left as it was");
            }
            if (mapped.layers().isEmpty()) {
                long weightOnly = mapped.skipped().isEmpty() ? weightOnlyLayers(facts.get(INT8)) : 0;
                throw new QwtException(weightOnly > 0
                        ? "the INT8 model quantizes weights only (" + weightOnly + " Conv/MatMul/Gemm layers read a "
                                + "DequantizeLinear weight and a float input): with no integer kernel there is no scale and "
                                + "bias to fold compensation into; give a model with quantized activations too"
                        : "no quantized layer of the INT8 model could be paired with a layer of the float model"
                                + (mapped.skipped().isEmpty() ? "" : " (first: " + mapped.skipped().get(0) + ")"));
            }
            facts.put(PAIRED, mapped);
        }
    }

    /**
     * Conv, MatMul and Gemm nodes whose weight is a DequantizeLinear's output and whose input is not: what ORT's
     * quantizer writes where it quantizes no activation (an encoder its transformer optimizer fused, whose
     * activations come from its own operators).
     */
    static long weightOnlyLayers(Model int8) {
        java.util.Set<String> dequantized = new java.util.HashSet<>();
        int8.graph().getNodeList().stream().filter(n -> n.getOpType().equals("DequantizeLinear"))
                .forEach(n -> dequantized.add(n.getOutput(0)));
        return int8.graph().getNodeList().stream()
                .filter(n -> dev.qwtonnx.quant.LayerKind.of(n.getOpType()) != null && Model.isDefaultDomain(n.getDomain())
                        && n.getInputCount() >= 2 && dequantized.contains(n.getInput(1)) && !dequantized.contains(n.getInput(0)))
                .count();
    }

    private static final class Compensate extends BaseStage {
        private final CwacOptions cwac;

        Compensate(CwacOptions cwac) {
            super("compensate", List.of(REFERENCE, INT8, INT8_NAMED, PAIRED), List.of(COMPENSATION, COMPENSATED));
            this.cwac = cwac;
        }

        @Override
        public void run(RunContext ctx, Facts facts) {
            ForeignLayers.Result mapped = facts.get(PAIRED);
            Compensator.Result comp = new Compensator(cwac).compensate(facts.get(REFERENCE), facts.get(INT8_NAMED),
                    mapped.layers(), mapped.floats(), mapped.skipped(), ctx.calibration(),
                    facts.has(ACCEPTANCE) ? facts.get(ACCEPTANCE) : ctx.heldOut(), ctx.progress(),
                    null);
            facts.put(COMPENSATION, comp);
            ctx.log().accept("compensation's time: " + comp.spent());
            // Written with the node names the INT8 model came with: only its initializers are compensation's to change.
            facts.put(COMPENSATED, NameNodes.withNamesOf(comp.model(), facts.get(INT8_NAMED), facts.get(INT8)));
        }
    }
}
