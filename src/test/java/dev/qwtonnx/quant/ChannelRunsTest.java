package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ChannelRunsTest {
    /** Weights of several layouts and sizes, past a chunk, as heap arrays and as views of off-heap memory. */
    private static final long[][] SHAPES = {{7, 5}, {300, 513}, {3, 70000}, {70001, 2}, {5, 3, 3, 3}, {4, 40000, 1, 1},
        {2, 3, 40000}};

    private static FloatBuffer offHeap(float[] w) {
        FloatBuffer b = ByteBuffer.allocateDirect(w.length * 4).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        b.put(w).flip();
        return b.asReadOnlyBuffer();
    }

    /** One layout: a shape and its channel axis, with the element count, inner size and channel count. */
    private record Layout(long[] dims, int axis, int n, long inner, int channels) {
    }

    /** Every shape of {@link #SHAPES} along each of its axes. */
    private static List<Layout> layouts() {
        List<Layout> out = new ArrayList<>();
        for (long[] dims : SHAPES) {
            for (int axis = 0; axis < dims.length; axis++) {
                out.add(new Layout(dims, axis, (int) dev.qwtonnx.model.HostTensor.numel(dims),
                        QuantMath.innerSize(dims, axis), (int) dims[axis]));
            }
        }
        return out;
    }

    @Test
    void everyElementIsVisitedOnceWithItsChannel() {
        for (Layout l : layouts()) {
            int n = l.n();
            long inner = l.inner();
            int channels = l.channels();
            float[] w = new float[n];
            for (int i = 0; i < n; i++) {
                w[i] = i;
            }
            for (FloatBuffer b : new FloatBuffer[] {FloatBuffer.wrap(w), offHeap(w)}) {
                int[] seen = new int[n];
                int[] channel = new int[n];
                ChannelRuns.walk(b, channels, inner, new ChannelRuns.Kernel() {
                    @Override
                    public void acrossChannels(float[] a, int off, int i, int len, int c) {
                        for (int t = 0; t < len; t++) {
                            assertEquals(i + t, (int) a[off + t]);
                            seen[i + t]++;
                            channel[i + t] = c + t;
                        }
                    }

                    @Override
                    public void withinChannel(float[] a, int off, int i, int len, int c) {
                        for (int t = 0; t < len; t++) {
                            assertEquals(i + t, (int) a[off + t]);
                            seen[i + t]++;
                            channel[i + t] = c;
                        }
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, seen[i], "element " + i);
                    assertEquals((int) ((i / inner) % channels), channel[i], "channel of element " + i);
                }
            }
        }
    }

    /** Known answers: the scales and int8 values computed element by element from their definitions. */
    @Test
    void roundingMatchesItsDefinitionElementByElement() {
        Random rnd = new Random(3);
        for (Layout l : layouts()) {
            long[] dims = l.dims();
            int axis = l.axis();
            int n = l.n();
            long inner = l.inner();
            int channels = l.channels();
            float[] w = new float[n];
            for (int i = 0; i < n; i++) {
                w[i] = (float) (rnd.nextGaussian() * (1 + (i / inner) % channels));
            }
            for (int qmax : new int[] {127, 63}) {
                float[] maxAbs = new float[channels];
                for (int i = 0; i < n; i++) {
                    int c = (int) ((i / inner) % channels);
                    maxAbs[c] = Math.max(maxAbs[c], Math.abs(w[i]));
                }
                float[] scales = QuantMath.symmetricScales(offHeap(w), dims, axis, qmax);
                for (int c = 0; c < channels; c++) {
                    assertEquals(maxAbs[c] / qmax, scales[c], 0f);
                }
                byte[] expected = new byte[n];
                for (int i = 0; i < n; i++) {
                    double v = Math.rint((double) w[i] / scales[(int) ((i / inner) % channels)]);
                    expected[i] = (byte) Math.max(-qmax, Math.min(qmax, v));
                }
                assertArrayEquals(expected, QuantMath.quantizeWeightsInt8(FloatBuffer.wrap(w), dims, axis, scales, qmax));
                assertArrayEquals(expected, QuantMath.quantizeWeightsInt8(offHeap(w), dims, axis, scales, qmax));
            }
        }
    }
}
