package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.INPUT;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.ort.OrtSessions;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.DropValueInfo;
import dev.qwtonnx.prepare.FixInputShapes;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.FoldConstantChains;
import dev.qwtonnx.prepare.InitializerInputs;
import dev.qwtonnx.prepare.InlineFunctions;
import dev.qwtonnx.prepare.IrVersionForOrt;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.prepare.RemoveUnusedInitializers;
import dev.qwtonnx.prepare.SortNodes;
import dev.qwtonnx.prepare.UnfuseOrtOps;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks the input (a float model the checker accepts) and runs the prepare passes: an IR version
 * newer than ORT reads lowered to its newest ({@link IrVersionForOrt}), model-local functions
 * inlined ({@link InlineFunctions}), inputs
 * shadowing initializers dropped, constants to initializers, the target opset, ORT's FusedConv and
 * FusedMatMul with constant weights back to Conv and MatMul ({@link UnfuseOrtOps}), constant
 * Identity/Cast/Reshape/Transpose chains folded, BatchNorm folded, value_info hints dropped,
 * unused initializers removed; for a target that takes static shapes only, the inputs' dynamic
 * dimensions fixed to the samples' sizes ({@link FixInputShapes}). Node names are made unique once, before the check: ORT refuses
 * duplicates, and every node a prepare pass adds takes a fresh name from the model's NameAuthority.
 */
final class PrepareStage extends QuantizeStage {
    PrepareStage(QuantizeRun.Options options) {
        super("prepare", options, List.of(INPUT), List.of(PREPARED));
    }

    /** The prepare passes, upgrading to {@code targetOpset} (13..{@link OpsetUpgrade#MAX_TARGET}). */
    static Pipeline passes(boolean verifyBetween, long targetOpset) {
        return new Pipeline(List.of(new IrVersionForOrt(), new InlineFunctions(), new InitializerInputs(), new ConstantToInitializer(), new OpsetUpgrade(targetOpset),
                new UnfuseOrtOps(), new FoldConstantChains(), new FoldBatchNorm(), new DropValueInfo(),
                new RemoveUnusedInitializers()), verifyBetween);
    }

    /** Checks {@code model} and runs the prepare passes on it. */
    static Model prepare(Model model, boolean verifyBetween, long targetOpset, java.util.function.Consumer<String> log) {
        return prepared(model, verifyBetween, targetOpset, log).model();
    }

    /** Checks {@code model} and runs the prepare passes on it: the model and what the passes left, and why. */
    private static Pipeline.Result prepared(Model model, boolean verifyBetween, long targetOpset,
            java.util.function.Consumer<String> log) {
        // Duplicate node names (which ORT refuses) and nodes out of order (which ORT sorts) are repaired, not
        // reported: the checker sees unique names in topological order.
        Model named = NameNodes.apply(SortNodes.apply(model));
        ModelChecker.check(named);
        return passes(verifyBetween, targetOpset).apply(named, log);
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model input = facts.get(INPUT);
        refuseQuantized(input);
        Pipeline.Result r = prepared(input, options.verifyBetweenPasses(), options.opset(), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        Model prepared = r.model();
        if (!options.quant().target().dynamicShapes()) {
            // The target takes static shapes only: the inputs get the sizes the run's samples have.
            Pipeline.Result fixed = new Pipeline(List.of(new FixInputShapes(sampleShapes(ctx))),
                    options.verifyBetweenPasses()).apply(prepared, ctx.log());
            fixed.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
            // Fixed sizes can make ORT's type inference reject a graph it takes with dynamic ones (Silero VAD: the
            // LSTM inside its If refuses the rank inferred from the fixed input). Then the inputs stay dynamic, the
            // target's static-shape rule says so, and the run goes on: the user's model was not at fault.
            String refusal = fixed.model() == prepared ? null : OrtSessions.refusal(fixed.model());
            if (refusal == null) {
                prepared = fixed.model();
            } else {
                String why = "with the samples' sizes ONNX Runtime rejects the model (" + refusal + ")";
                ctx.reject(FixInputShapes.NAME, "input shapes", why);
                ctx.log().accept("input shapes: " + why);
            }
        }
        facts.put(PREPARED, prepared);
    }

    /**
     * Each input's distinct shapes over the calibration and held-out samples: the model is
     * calibrated on the one and measured on the other, so a fixed size must suit both.
     */
    private static Map<String, List<long[]>> sampleShapes(RunContext ctx) {
        Map<String, Map<List<Long>, long[]>> distinct = new LinkedHashMap<>();
        for (CalibrationSource src : new CalibrationSource[] {ctx.calibration(), ctx.heldOut()}) {
            if (src == null) {
                continue;
            }
            for (Sample s : src) {
                s.inputs().forEach((name, t) -> distinct.computeIfAbsent(name, k -> new LinkedHashMap<>())
                        .putIfAbsent(Arrays.stream(t.shape()).boxed().toList(), t.shape()));
            }
        }
        Map<String, List<long[]>> out = new LinkedHashMap<>();
        distinct.forEach((name, shapes) -> out.put(name, List.copyOf(shapes.values())));
        return out;
    }

    private static final Set<String> QUANTIZED_OPS = Set.of("QuantizeLinear", "DequantizeLinear",
            "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QGemm", "MatMulIntegerToFloat",
            "DynamicQuantizeMatMul");

    /** An already quantized model would be quantized twice; the user should give the float original. */
    private static void refuseQuantized(Model model) {
        for (NodeProto n : model.graph().getNodeList()) {
            if (QUANTIZED_OPS.contains(n.getOpType()) || n.getOpType().startsWith("QLinear")) {
                throw new QwtException("the model is already quantized (" + Nodes.describe(n) + "); give the float model");
            }
        }
    }
}
