package dev.qwtonnx.quant;

import java.nio.FloatBuffer;

/**
 * A per-channel weight walked in runs of elements whose channels are known without a division per
 * element: the weight is [outer][channels][inner] along its channel axis, so a run is either
 * {@code inner} consecutive elements of one channel or, where {@code inner} is 1 (a MatMul's
 * [K, N] weight), consecutive elements of consecutive channels. The kernels' loops over a run are
 * plain array loops the JIT unrolls (and vectorizes where it can), which it does not for an
 * element-by-element walk with a channel counter. Weight rounding and the rounding residual
 * compensation measures with (see ResidualTarget) walk every weight, so their speed is this loop's.
 */
public final class ChannelRuns {
    /** Elements copied at a time from a weight that is no heap array (a mapped one): bounded heap. */
    static final int CHUNK = 1 << 16;

    /** What is done with each run; {@code a[off + t]} is element {@code i + t}. */
    public interface Kernel {
        /** Elements i..i+len-1, of channels c..c+len-1 (inner is 1). */
        void acrossChannels(float[] a, int off, int i, int len, int c);

        /** Elements i..i+len-1, all of channel c. */
        void withinChannel(float[] a, int off, int i, int len, int c);
    }

    private ChannelRuns() {
    }

    /** Walks all of {@code w} (its position and limit as they are: element 0 at index 0) in runs. */
    public static void walk(FloatBuffer w, int channels, long inner, Kernel kernel) {
        int n = w.limit();
        float[] buf = w.hasArray() ? null : new float[Math.min(n, CHUNK)];
        int c = 0;
        long k = 0; // position within channel c's run of inner elements
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            int len = Math.min(CHUNK, n - i0);
            float[] a;
            int base;
            if (buf == null) {
                a = w.array();
                base = w.arrayOffset() + i0;
            } else {
                w.get(i0, buf, 0, len);
                a = buf;
                base = 0;
            }
            int j = 0;
            while (j < len) {
                if (inner == 1) {
                    int run = Math.min(len - j, channels - c);
                    kernel.acrossChannels(a, base + j, i0 + j, run, c);
                    j += run;
                    c = c + run == channels ? 0 : c + run;
                } else {
                    int run = (int) Math.min(len - j, inner - k);
                    kernel.withinChannel(a, base + j, i0 + j, run, c);
                    j += run;
                    k += run;
                    if (k == inner) {
                        k = 0;
                        c = c + 1 == channels ? 0 : c + 1;
                    }
                }
            }
        }
    }
}
