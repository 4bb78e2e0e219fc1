package dev.qwtonnx.cwac;

import dev.qwtonnx.QwtException;

/**
 * How compensation fits and schedules.
 *
 * @param method   none (plain PTQ), bias (shift only, a = 1: other tools' "bias correction"), cwac
 * @param target   local: the float layer applied to the quantized model's own input of that layer;
 *                 global: the float model's activation — for a layer fed (through any path) by
 *                 another layer measured in the same pass, its local target: that layer's own
 *                 compensation is not known yet, and the float activation would have the two
 *                 correct the same upstream error twice
 * @param schedule parallel: every layer fitted from one pass; sequential: in stages, each stage
 *                 measured on the model with the stages before it compensated
 * @param stages   for sequential: at most this many stages (consecutive depths of the graph's
 *                 quantized layers grouped evenly), 0 = one stage per depth, so that no layer of
 *                 a stage feeds another; each stage is one pass over the data (under output
 *                 acceptance, one pass measures the stages ahead too, until a stage changes the model)
 * @param ridge    pull of a toward 1, relative to the channel's own variance (0 = plain least squares)
 * @param maxGain  a is kept within [1/maxGain, maxGain]: a scale never turns zero or negative
 * @param gate     none: every channel takes its fitted map; cv: each channel keeps the map (none,
 *                 shift, affine) with the lowest error on calibration samples it was not fitted to
 * @param accept   none: every stage keeps its folds; output: after each stage, the folds (full fit,
 *                 shift only, or none) that give the lowest model-output error against the float
 *                 model on the acceptance samples are kept, so that no stage makes the output worse
 * @param samples  the fits are measured on this many calibration samples, the first ones (0 = all):
 *                 two numbers per channel need far fewer rows than ranges do; more where a layer has
 *                 fewer than {@link Compensator#MIN_ROWS} rows per channel on them
 */
public record CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate,
        int stages, Accept accept, int samples, long memoryMb) {
    /** {@link #memoryMb} that sizes the budget from the model (see {@link #keepBytes}). */
    public static final long AUTO_MEMORY = -1;

    /** The least budget {@link #keepBytes} gives on its own. */
    static final long MIN_AUTO_KEEP = 256L << 20;

    /** With the budget for kept activations sized from the model. */
    public CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate,
            int stages, Accept accept, int samples) {
        this(method, target, schedule, ridge, maxGain, gate, stages, accept, samples, AUTO_MEMORY);
    }

    public enum Method { NONE, BIAS, CWAC }

    public enum Target { LOCAL, GLOBAL }

    public enum Schedule { PARALLEL, SEQUENTIAL }

    public enum Gate { NONE, CV }

    public enum Accept { NONE, OUTPUT }

    /**
     * With the default gate, none: the cv gate gains little on a transformer and loses where the
     * calibration set is small (a detector's 16 images make halves too small to judge a channel
     * by); see docs/decisions/0009.
     */
    public CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain) {
        this(method, target, schedule, ridge, maxGain, Gate.NONE);
    }

    /** With one stage per depth where sequential, and without acceptance (every stage keeps its folds). */
    public CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate) {
        this(method, target, schedule, ridge, maxGain, gate, 0, Accept.NONE);
    }

    /** Measured on at most {@link #DEFAULT_SAMPLES} samples. */
    public CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate,
            int stages, Accept accept) {
        this(method, target, schedule, ridge, maxGain, gate, stages, accept, DEFAULT_SAMPLES);
    }

    public CwacOptions {
        if (!(ridge >= 0) || Double.isInfinite(ridge)) {
            throw new QwtException("ridge must be a finite number >= 0, got " + ridge);
        }
        if (!(maxGain > 1) || Double.isInfinite(maxGain)) {
            throw new QwtException("max gain must be a finite number > 1, got " + maxGain);
        }
        if (memoryMb < AUTO_MEMORY) {
            throw new QwtException("the memory budget must be 0 MB or more, got " + memoryMb);
        }
        if (stages < AUTO_STAGES) {
            throw new QwtException("stages must be >= 0 (0 = one per depth), got " + stages);
        }
        if (samples < 0) {
            throw new QwtException("CWAC samples must be >= 0 (0 = all), got " + samples);
        }
        if (method == null || target == null || schedule == null || gate == null || accept == null) {
            throw new IllegalArgumentException("method, target, schedule, gate and accept are required");
        }
    }

    /**
     * Sequential in at most 4 stages at 8-bit weights: each stage is one pass over the data, and 4 keep
     * nearly all of what one stage per depth (tens of passes) gains, where 2 do not (docs/decisions/0007).
     */
    public static final int DEFAULT_STAGES = 4;

    /**
     * Below 8 bits, 8 stages: there the error each stage leaves to the next is larger, and 4 stages
     * fall 0.6 to 1 dB short of one per depth on the PP-OCR CNNs where 8 come within 0.3 dB, at 10 to
     * 15 % more run time instead of 2 to 4 times (docs/decisions/0007).
     */
    public static final int LOW_BIT_STAGES = 8;

    /** Stages chosen by the weights' bit width ({@link #resolvedFor}): the default. */
    public static final int AUTO_STAGES = -1;

    /** These options with {@link #AUTO_STAGES} made a number for weights of {@code weightBits} bits. */
    public CwacOptions resolvedFor(int weightBits) {
        return stages != AUTO_STAGES ? this : withSchedule(schedule, weightBits < 8 ? LOW_BIT_STAGES : DEFAULT_STAGES);
    }

    /** The stage count, {@link #AUTO_STAGES} read as 8-bit weights' (for a caller that never resolved it). */
    public int stageCount() {
        return stages == AUTO_STAGES ? DEFAULT_STAGES : stages;
    }

    /**
     * Calibration samples the fits are measured on (see {@link #samples()}), more where a layer has
     * fewer than {@link Compensator#MIN_ROWS} rows per channel on them. Two numbers per channel need
     * far fewer rows than ranges do: a sentence gives each channel dozens of rows, an image hundreds,
     * so compensation's time does not grow with the calibration set. 16, not fewer: at 6-bit
     * weights, where CWAC gains most, 16 samples keep nearly all of the gain of measuring on all and
     * 8 lose much of it (docs/decisions/0008, {@code tools/bench-calib.sh samples-w6}).
     */
    public static final int DEFAULT_SAMPLES = 16;

    public static CwacOptions defaults() {
        return new CwacOptions(Method.CWAC, Target.GLOBAL, Schedule.SEQUENTIAL, 0.01, 2.0, Gate.NONE, AUTO_STAGES,
                Accept.NONE);
    }

    /**
     * For a model another tool quantized: one stage per depth, each kept only where it lowers the
     * model-output error, measured on all samples. Compensating is a one-off step, so the finer
     * schedule's cost is worth it (docs/decisions/0012).
     */
    public static CwacOptions compensateDefaults() {
        return defaults().withSchedule(Schedule.SEQUENTIAL, COMPENSATE_STAGES).withAccept(Accept.OUTPUT).withSamples(0);
    }

    /** Stages for {@link #compensateDefaults()}: one per depth. */
    public static final int COMPENSATE_STAGES = 0;

    public CwacOptions withMethod(Method m) {
        return new CwacOptions(m, target, schedule, ridge, maxGain, gate, stages, accept, samples, memoryMb);
    }

    public CwacOptions withGate(Gate g) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, g, stages, accept, samples, memoryMb);
    }

    public CwacOptions withAccept(Accept a) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, stages, a, samples, memoryMb);
    }

    public CwacOptions withRidge(double r) {
        return new CwacOptions(method, target, schedule, r, maxGain, gate, stages, accept, samples, memoryMb);
    }

    public CwacOptions withSchedule(Schedule s, int maxStages) {
        return new CwacOptions(method, target, s, ridge, maxGain, gate, maxStages, accept, samples, memoryMb);
    }

    /** With at most {@code mb} MB of float activations kept between passes ({@link #AUTO_MEMORY}: from the model). */
    public CwacOptions withMemoryMb(long mb) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, stages, accept, samples, mb);
    }

    /**
     * Bytes of float activations compensation keeps between its passes over the samples; beyond
     * them a batch's activations are computed again (memory O(budget), time one more float run per
     * batch and stage). The user's {@code --memory}, or, sized from the model and not from the
     * machine, twice the model's size and at least {@link #MIN_AUTO_KEEP}: ORT holds the weights
     * anyway, and kept activations beyond a few times that make the process larger than
     * quantizing needs (an OCR recognizer's reference for 16 samples is about 1 GB).
     */
    public long keepBytes(dev.qwtonnx.model.Model model) {
        return memoryMb != AUTO_MEMORY ? memoryMb << 20 : Math.max(MIN_AUTO_KEEP, 2 * model.serializedSize());
    }

    public CwacOptions withSamples(int n) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, stages, accept, n, memoryMb);
    }
}
