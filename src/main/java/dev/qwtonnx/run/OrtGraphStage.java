package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.OPTIMIZED;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;

import dev.qwtonnx.verify.OrtKernels;
import java.util.List;

/**
 * ORT's optimized graph of the written model: which integer kernels ORT runs and which quantized
 * layers it leaves in float. Made once, for the summary and the report.
 */
final class OrtGraphStage extends BaseStage {
    OrtGraphStage() {
        super("ort-graph", List.of(OUTPUT), List.of(OPTIMIZED));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        facts.put(OPTIMIZED, OrtKernels.optimized(facts.get(OUTPUT)));
    }
}
