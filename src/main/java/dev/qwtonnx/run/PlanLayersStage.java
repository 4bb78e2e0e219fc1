package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.MATCHED;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import java.util.List;

/** Matches the Conv/MatMul/Gemm layers with a constant weight; records why each other candidate stays float. */
final class PlanLayersStage extends QuantizeStage {
    PlanLayersStage(QuantizeRun.Options options) {
        super("plan-layers", options, List.of(PREPARED), List.of(MATCHED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        LayerMatcher.Result plan = LayerMatcher.match(prepared, options.quant());
        for (LayerMatcher.Rejected r : plan.rejections()) {
            ctx.log().accept("left in float: " + r);
            ctx.reject(name(), r.node(), r.why());
        }
        // Layers left float because they feed a log are the plan's choice, not a model without layers: the output is
        // then the prepared float model, as where the cost model keeps every layer float.
        boolean logFed = plan.rejections().stream().anyMatch(r -> r.reason() == LayerMatcher.Reason.LOG_INPUT);
        if (plan.layers().isEmpty() && !logFed && !IfBranches.hasCandidates(prepared)
                && !LoopBodies.hasCandidates(prepared, options.quant())) {
            dev.qwtonnx.target.Target t = options.quant().target();
            List<String> onTarget = plan.rejections().stream().filter(r -> r.reason() == LayerMatcher.Reason.TARGET)
                    .map(LayerMatcher.Rejected::why).toList();
            long half = plan.rejections().stream().filter(r -> r.reason() == LayerMatcher.Reason.FLOAT16).count();
            throw new QwtException(!onTarget.isEmpty()
                    ? "target " + t.name() + " runs none of this model's layers quantized (" + onTarget.size() + " left in "
                            + "float: " + onTarget.get(0) + "); another target would quantize them"
                    : half > 0 ? "the model computes in float16 (float16 weights in " + half + " of its Conv, MatMul and "
                            + "Gemm layers): qwt-onnx quantizes float32 models; give it the float32 model this one was made from"
                    : "the model has no Conv, MatMul or Gemm layer with a constant weight to quantize"
                            + untouched(prepared));
        }
        facts.put(MATCHED, plan);
    }

    /** Where the weights of a model with nothing to quantize are, if in operators the tool leaves float ("" if none). */
    private static String untouched(Model prepared) {
        List<String> groups = dev.qwtonnx.quant.UntouchedWeights.groups(prepared);
        return groups.isEmpty() ? "" : "; its weights are in operators qwt-onnx does not quantize: " + String.join(", ", groups);
    }
}
