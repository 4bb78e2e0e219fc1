package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.FloatTensor;

/**
 * Running sums per output channel of a layer: n, Σyq, Σyf, Σyq², Σyq·yf, Σyf². Memory is
 * O(channels) whatever the number of samples; sums are in double.
 */
public final class ChannelStats {
    final long[] n;
    final double[] sq;
    final double[] sf;
    final double[] sqq;
    final double[] sqf;
    final double[] sff;

    public ChannelStats(int channels) {
        n = new long[channels];
        sq = new double[channels];
        sf = new double[channels];
        sqq = new double[channels];
        sqf = new double[channels];
        sff = new double[channels];
    }

    /** The sums over both sets of samples: what a fit on all the data uses. */
    public static ChannelStats sum(ChannelStats x, ChannelStats y) {
        if (x.channels() != y.channels()) {
            throw new IllegalArgumentException("channel counts differ: " + x.channels() + " vs " + y.channels());
        }
        ChannelStats s = new ChannelStats(x.channels());
        for (int c = 0; c < s.channels(); c++) {
            s.n[c] = x.n[c] + y.n[c];
            s.sq[c] = x.sq[c] + y.sq[c];
            s.sf[c] = x.sf[c] + y.sf[c];
            s.sqq[c] = x.sqq[c] + y.sqq[c];
            s.sqf[c] = x.sqf[c] + y.sqf[c];
            s.sff[c] = x.sff[c] + y.sff[c];
        }
        return s;
    }

    /** Whether any channel has seen data. */
    public boolean isEmpty() {
        for (long k : n) {
            if (k > 0) {
                return false;
            }
        }
        return true;
    }

    public int channels() {
        return n.length;
    }

    /** Adds one pair of tensors of equal shape; {@code axis} is the channel axis. */
    public void add(FloatTensor yq, FloatTensor yf, int axis) {
        add(yq, yf, false, axis, 0, 1);
    }

    /**
     * Adds part {@code part} of {@code parts} equal parts along dimension 0 of a pair of tensors of
     * equal shape (one sample of a joined batch); {@code axis} is the channel axis, not 0.
     */
    public void add(FloatTensor yq, FloatTensor yf, int axis, int part, int parts) {
        add(yq, yf, false, axis, part, parts);
    }

    /**
     * As {@link #add(FloatTensor, FloatTensor, int, int, int)}; with
     * {@code residual}, {@code yf} holds yf − yq (the target is the sum).
     */
    public void add(FloatTensor yq, FloatTensor yf, boolean residual, int axis, int part, int parts) {
        float[] q = yq.data();
        float[] f = yf.data();
        if (q.length != f.length) {
            throw new IllegalArgumentException("quantized and target outputs differ in size: " + q.length + " vs " + f.length);
        }
        int channels = n.length;
        if (yq.shape()[axis] != channels) {
            throw new IllegalArgumentException("output has " + yq.shape()[axis] + " channels, expected " + channels);
        }
        if (q.length % parts != 0 || (parts > 1 && axis == 0)) {
            throw new IllegalArgumentException("cannot split " + q.length + " values in " + parts + " parts along dimension 0");
        }
        int from = q.length / parts * part;
        int to = from + q.length / parts;
        long inner = yq.inner(axis);
        if (inner == 1) {
            addChannelsLast(q, f, residual, from, to);
            return;
        }
        int i = from;
        while (i < to) {
            int c = (int) ((i / inner) % channels);
            long end = Math.min(to, i + inner);
            double s1 = 0;
            double s2 = 0;
            double s11 = 0;
            double s12 = 0;
            double s22 = 0;
            for (int k = i; k < end; k++) {
                double a = q[k];
                double b = residual ? a + f[k] : f[k];
                s1 += a;
                s2 += b;
                s11 += a * a;
                s12 += a * b;
                s22 += b * b;
            }
            n[c] += end - i;
            sq[c] += s1;
            sf[c] += s2;
            sqq[c] += s11;
            sqf[c] += s12;
            sff[c] += s22;
            i = (int) end;
        }
    }

    /**
     * Channels innermost (a MatMul's output): row by row, in two loops over channels, the quantized
     * output's sums and then the target's: two or three running sums per loop keep the JIT's loop
     * fast where five in one loop do not (the same sums, added in the same order).
     */
    private void addChannelsLast(float[] q, float[] f, boolean residual, int from, int to) {
        int channels = n.length;
        for (int row = from; row < to; row += channels) {
            for (int c = 0; c < channels; c++) {
                double a = q[row + c];
                sq[c] += a;
                sqq[c] += a * a;
            }
            if (residual) {
                for (int c = 0; c < channels; c++) {
                    double a = q[row + c];
                    double b = a + f[row + c];
                    sf[c] += b;
                    sqf[c] += a * b;
                    sff[c] += b * b;
                }
            } else {
                for (int c = 0; c < channels; c++) {
                    double a = q[row + c];
                    double b = f[row + c];
                    sf[c] += b;
                    sqf[c] += a * b;
                    sff[c] += b * b;
                }
            }
        }
        long rows = (to - from) / channels;
        for (int c = 0; c < channels; c++) {
            n[c] += rows;
        }
    }
}
