package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.INPUT;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.prepare.ConstantToInitializer;
import dev.qwtonnx.prepare.DropValueInfo;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.prepare.FoldConstantChains;
import dev.qwtonnx.prepare.InitializerInputs;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.OpsetUpgrade;
import dev.qwtonnx.prepare.RemoveUnusedInitializers;
import java.util.List;
import java.util.Set;

/**
 * Checks the input (a float model the checker accepts) and runs the prepare passes: inputs
 * shadowing initializers dropped, constants to initializers, the target opset, constant
 * Identity/Cast/Reshape/Transpose chains folded, BatchNorm folded, value_info hints dropped,
 * unused initializers removed. Node names are made unique once, before the check: ORT refuses
 * duplicates, and every node a prepare pass adds takes a fresh name from the model's NameAuthority.
 */
final class PrepareStage extends QuantizeStage {
    PrepareStage(QuantizeRun.Options options) {
        super("prepare", options, List.of(INPUT), List.of(PREPARED));
    }

    /** The prepare passes, upgrading to {@code targetOpset} (13..{@link OpsetUpgrade#MAX_TARGET}). */
    static Pipeline passes(boolean verifyBetween, long targetOpset) {
        return new Pipeline(List.of(new InitializerInputs(), new ConstantToInitializer(), new OpsetUpgrade(targetOpset),
                new FoldConstantChains(), new FoldBatchNorm(), new DropValueInfo(),
                new RemoveUnusedInitializers()), verifyBetween);
    }

    /** Checks {@code model} and runs the prepare passes on it. */
    static Model prepare(Model model, boolean verifyBetween, long targetOpset, java.util.function.Consumer<String> log) {
        return prepared(model, verifyBetween, targetOpset, log).model();
    }

    /** Checks {@code model} and runs the prepare passes on it: the model and what the passes left, and why. */
    private static Pipeline.Result prepared(Model model, boolean verifyBetween, long targetOpset,
            java.util.function.Consumer<String> log) {
        // Duplicate node names (which ORT refuses) are repaired, not reported: the checker sees unique names.
        Model named = NameNodes.apply(model);
        ModelChecker.check(named);
        return passes(verifyBetween, targetOpset).apply(named, log);
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model input = facts.get(INPUT);
        refuseQuantized(input);
        Pipeline.Result r = prepared(input, options.verifyBetweenPasses(), options.opset(), ctx.log());
        r.rejections().forEach(x -> ctx.reject(x.pass(), x.subject(), x.reason()));
        facts.put(PREPARED, r.model());
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
