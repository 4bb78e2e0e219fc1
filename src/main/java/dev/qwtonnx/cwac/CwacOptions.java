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
 *                 a stage feeds another; each stage is one pass over the data
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
        int stages, Accept accept, int samples) {
    public enum Method { NONE, BIAS, CWAC }

    public enum Target { LOCAL, GLOBAL }

    public enum Schedule { PARALLEL, SEQUENTIAL }

    public enum Gate { NONE, CV }

    public enum Accept { NONE, OUTPUT }

    /**
     * With the default gate, none: measured, the cv gate gains little on MiniLM (W8 0.9928 → 0.9931,
     * W6 min 0.9775 → 0.9803) and loses on the PP-OCRv4 detector (W6 IoU 0.922 → 0.908), whose 16
     * calibration images make halves too small to judge a channel by.
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
        if (stages < 0) {
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
     * Sequential in at most 4 stages. Measured (32 calibration / 100 held-out sentences; 16 / 16
     * detector images): MiniLM cosine 0.9924 / 0.9839 with 4 stages against 0.9928 / 0.9870 with
     * one stage per depth (24), PP-OCRv4 detector IoU 0.920 against 0.922 (about 40 depths); 2
     * stages lose on the detector (0.905). Each stage is one pass over the data.
     */
    public static final int DEFAULT_STAGES = 4;

    /**
     * Calibration samples the fits are measured on (see {@link #samples()}), more where a layer has
     * fewer than {@link Compensator#MIN_ROWS} rows per channel on them. Measured on MiniLM over 4
     * disjoint sets of 128 calibration sentences, each scored on the same 300 held-out ones
     * ({@code tools/bench-calib.sh samples}; one set alone cannot rank caps: the worst sentence's
     * cosine moves by ±0.003 with changes of the fits as small as 10⁻⁴): mean / worst cosine
     * averaged over the sets, parallel 16, 24, 32, 64, all: 0.99218 / 0.9831, 0.99219 / 0.9835,
     * 0.99228 / 0.9820, 0.99222 / 0.9838, 0.99219 / 0.9825; default schedule 0.99205 / 0.9810,
     * 0.99209 / 0.9828, 0.99218 / 0.9839, 0.99222 / 0.9832, 0.99217 / 0.9811 (plain PTQ 0.99205 /
     * 0.9821). No cap is told apart from all samples at 8 bits; a sentence gives each channel dozens
     * of rows, an image hundreds. Compensation time then no longer grows with the calibration set.
     * With 6-bit weights, where CWAC gains on MiniLM, fewer samples are told apart (same protocol):
     * plain PTQ 0.98547 / 0.9704; parallel all, 16, 12, 8: 0.98710 / 0.9758, 0.98702 / 0.9731,
     * 0.98696 / 0.9707, 0.98679 / 0.9700; default schedule 0.98743 / 0.9745, 0.98709 / 0.9752,
     * 0.98706 / 0.9724, 0.98643 / 0.9705: 8 samples lose a fifth to a half of the mean's gain and
     * most of the worst sentence's, 16 keep nearly all of it — so 16, though 8 would be faster.
     */
    public static final int DEFAULT_SAMPLES = 16;

    public static CwacOptions defaults() {
        return new CwacOptions(Method.CWAC, Target.GLOBAL, Schedule.SEQUENTIAL, 0.01, 2.0, Gate.NONE, DEFAULT_STAGES,
                Accept.NONE);
    }

    /**
     * For a model another tool quantized: one stage per depth, each kept only where it lowers the
     * model-output error. Measured on ORT quantize_static models (MiniLM embedding cosine from
     * 0.9286 / QOperator 0.9316; detector IoU from 0.8811 / 0.8810): per depth 0.9790 / 0.9836 and
     * 0.9296 / 0.9426, in 4 stages 0.9671 / 0.9719 and 0.9344 / 0.9316. Compensating is a one-off
     * step, so the finer schedule's cost (about 5x the 4-stage time) is worth it; it measures on all samples.
     */
    public static CwacOptions compensateDefaults() {
        return defaults().withSchedule(Schedule.SEQUENTIAL, COMPENSATE_STAGES).withAccept(Accept.OUTPUT).withSamples(0);
    }

    /** Stages for {@link #compensateDefaults()}: one per depth. */
    public static final int COMPENSATE_STAGES = 0;

    public CwacOptions withMethod(Method m) {
        return new CwacOptions(m, target, schedule, ridge, maxGain, gate, stages, accept, samples);
    }

    public CwacOptions withGate(Gate g) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, g, stages, accept, samples);
    }

    public CwacOptions withAccept(Accept a) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, stages, a, samples);
    }

    public CwacOptions withRidge(double r) {
        return new CwacOptions(method, target, schedule, r, maxGain, gate, stages, accept, samples);
    }

    public CwacOptions withSchedule(Schedule s, int maxStages) {
        return new CwacOptions(method, target, s, ridge, maxGain, gate, maxStages, accept, samples);
    }

    public CwacOptions withSamples(int n) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, stages, accept, n);
    }
}
