package dev.qwtonnx.cli;

import dev.qwtonnx.cwac.Compensator;
import dev.qwtonnx.cwac.CwacOptions;
import picocli.CommandLine.Option;

/** The compensation options, shared by quantize and compensate. */
final class CwacMixin {
    @Option(names = "--method", defaultValue = "cwac", paramLabel = "M",
            description = "none (plain PTQ; quantize only), bias (bias correction), cwac (default: ${DEFAULT-VALUE}).")
    String method;

    @Option(names = "--fit-target", defaultValue = "global", paramLabel = "T",
            description = "What CWAC fits each layer to: the global float model's activation or the local float layer "
                    + "on the quantized input (default: ${DEFAULT-VALUE}).")
    String target;

    @Option(names = "--schedule", defaultValue = "sequential", paramLabel = "S",
            description = "CWAC schedule: parallel or sequential (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--stages", paramLabel = "N",
            description = "Sequential CWAC in at most N stages; 0 = one stage per "
                    + "depth of the quantized layers (default for quantize: " + CwacOptions.DEFAULT_STAGES + " at 8-bit "
                    + "weights, " + CwacOptions.LOW_BIT_STAGES + " below; 0 for compensate).")
    Integer stages;

    @Option(names = "--ridge", defaultValue = "0.01", paramLabel = "R",
            description = "Ridge strength pulling the per-channel gain toward 1 (default: ${DEFAULT-VALUE}).")
    double ridge;

    @Option(names = "--gate", defaultValue = "none", paramLabel = "G",
            description = "none: every channel takes its fit; cv: each channel keeps none, shift or affine, whichever "
                    + "predicts held-out calibration samples best (default: ${DEFAULT-VALUE}).")
    String gate;

    @Option(names = "--accept", paramLabel = "A",
            description = "none: every stage keeps its folds; output: each stage keeps the full fit, its shift alone or "
                    + "nothing, a change kept only where it lowers the model-output error beyond the noise on samples "
                    + "the fits did not use (default: none for quantize, output for compensate).")
    String accept;

    @Option(names = "--cwac-samples", paramLabel = "N",
            description = "Measure the CWAC fits on the first N calibration samples, more where a layer gets fewer "
                    + "than " + Compensator.MIN_ROWS + " rows per channel from them; 0 = all (default: " + CwacOptions.DEFAULT_SAMPLES
                    + " for quantize, 0 for compensate).")
    Integer samples;

    @Option(names = "--memory", paramLabel = "MB",
            description = "Float activations kept between compensation's passes, at most MB megabytes (per cache: the "
                    + "layers' reference and the float prefix's boundary); beyond it they are computed again, never "
                    + "failing. An eighth of it bounds what a pass of compensate's output acceptance measures per "
                    + "sample in flight, stages ahead of the current one included (default: twice the model's size, "
                    + "at least 256).")
    Long memoryMb;

    /** The options, with quantize's defaults: stages by the weights' bit width, no acceptance. */
    CwacOptions options() {
        return options(CwacOptions.AUTO_STAGES, CwacOptions.Accept.NONE).withSamples(
                samples == null ? CwacOptions.DEFAULT_SAMPLES : samples);
    }

    /**
     * The options; {@code defaultStages} and {@code defaultAccept} where --stages and --accept are not given,
     * all samples where --cwac-samples is not.
     */
    CwacOptions options(int defaultStages, CwacOptions.Accept defaultAccept) {
        if (stages != null && stages < 0) {
            throw new dev.qwtonnx.QwtException("--stages must be 0 or more (0 = one per depth), got " + stages);
        }
        if (memoryMb != null && memoryMb < 0) {
            throw new dev.qwtonnx.QwtException("--memory must be 0 MB or more, got " + memoryMb);
        }
        return new CwacOptions(QuantizeCommand.parse(CwacOptions.Method.class, method, "--method"),
                QuantizeCommand.parse(CwacOptions.Target.class, target, "--fit-target"),
                QuantizeCommand.parse(CwacOptions.Schedule.class, schedule, "--schedule"), ridge, 2.0,
                QuantizeCommand.parse(CwacOptions.Gate.class, gate, "--gate"), stages == null ? defaultStages : stages,
                accept == null ? defaultAccept : QuantizeCommand.parse(CwacOptions.Accept.class, accept, "--accept"),
                samples == null ? 0 : samples, memoryMb == null ? CwacOptions.AUTO_MEMORY : memoryMb);
    }
}
