package dev.qwtonnx.cwac;

import dev.qwtonnx.QwtException;

/**
 * How compensation fits and schedules.
 *
 * @param method   none (plain PTQ), bias (shift only, a = 1: other tools' "bias correction"), cwac
 * @param target   local: the float layer applied to the quantized model's own input of that layer;
 *                 global: the float model's activation
 * @param schedule parallel: every layer fitted from one pass; sequential: in stages of layers that
 *                 do not depend on each other, each stage seeing the compensated stages before it
 * @param ridge    pull of a toward 1, relative to the channel's own variance (0 = plain least squares)
 * @param maxGain  a is kept within [1/maxGain, maxGain]: a scale never turns zero or negative
 * @param gate     none: every channel takes its fitted map; cv: each channel keeps the map (none,
 *                 shift, affine) with the lowest error on calibration samples it was not fitted to
 * @param accept   none: every stage keeps its folds; output: after each stage, the folds (full fit,
 *                 shift only, or none) that give the lowest model-output error against the float
 *                 model on the acceptance samples are kept, so that no stage makes the output worse
 */
public record CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate,
        Accept accept) {
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

    /** Without acceptance: every stage keeps its folds (quantize's default). */
    public CwacOptions(Method method, Target target, Schedule schedule, double ridge, double maxGain, Gate gate) {
        this(method, target, schedule, ridge, maxGain, gate, Accept.NONE);
    }

    public CwacOptions {
        if (!(ridge >= 0) || Double.isInfinite(ridge)) {
            throw new QwtException("ridge must be a finite number >= 0, got " + ridge);
        }
        if (!(maxGain > 1) || Double.isInfinite(maxGain)) {
            throw new QwtException("max gain must be a finite number > 1, got " + maxGain);
        }
        if (method == null || target == null || schedule == null || gate == null || accept == null) {
            throw new IllegalArgumentException("method, target, schedule, gate and accept are required");
        }
    }

    public static CwacOptions defaults() {
        return new CwacOptions(Method.CWAC, Target.GLOBAL, Schedule.SEQUENTIAL, 0.01, 2.0);
    }

    public CwacOptions withMethod(Method m) {
        return new CwacOptions(m, target, schedule, ridge, maxGain, gate, accept);
    }

    public CwacOptions withGate(Gate g) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, g, accept);
    }

    public CwacOptions withAccept(Accept a) {
        return new CwacOptions(method, target, schedule, ridge, maxGain, gate, a);
    }

    public CwacOptions withRidge(double r) {
        return new CwacOptions(method, target, schedule, r, maxGain, gate, accept);
    }
}
