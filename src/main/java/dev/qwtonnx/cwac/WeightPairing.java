package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.ChannelRuns;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantMath;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.IntToDoubleFunction;
import java.util.function.Predicate;

/**
 * The one pairing of a quantized layer with a float layer by weights, for models whose layers do
 * not record where they came from (another tool's; tools rename nodes, so names never decide). A
 * quantized layer's dequantized weight w_q is compared with the constant weight w_f of every float
 * layer of the same kind and weight shape by the relative squared error after the best positive
 * factor per output channel, Σ_c min_{r≥0} ‖w_q,c − r·s_c·w_f,c‖² / ‖w_q‖²: a positive
 * per-channel factor is what compensation's gains, a scale the graph does not hold (dynamic
 * layers) and the magnitude of a folded BatchNorm's γ/√(σ²+ε) change, so none of them hides a
 * layer; the sign s_c of that BatchNorm factor, where the caller knows one, is applied to the
 * float weight first. The closest float layer within {@value #MAX_ERROR} wins; near-ties (a
 * repeated block) go to one not yet paired, then to the one at the same position among layers of
 * its kind.
 */
public final class WeightPairing {
    /** Above this error weights are not the same layer's (quantization noise is far below). */
    public static final double MAX_ERROR = 0.05;

    /** Decoded float weights are cached while they total less than this (a big model's would not fit). */
    private static final long CACHE_FLOATS = 64L << 20;

    /** A float layer that may be paired: its node and its position among the float graph's layers of its kind. */
    public record Candidate(NodeProto node, int position) {
    }

    /** The float layer paired, with its weight error. */
    public record Pick(Candidate candidate, double error) {
    }

    private final GraphEditor fg;
    private final Map<String, List<Candidate>> byKindAndShape = new HashMap<>();
    private final Map<String, FloatBuffer> decoded = new HashMap<>();
    private long cached;

    /** The float graph's Conv / MatMul / Gemm nodes of a constant float weight, indexed by kind and weight shape. */
    public WeightPairing(GraphEditor floatGraph) {
        this.fg = floatGraph;
        Map<LayerKind, Integer> counts = new HashMap<>();
        for (NodeProto n : fg.nodes()) {
            LayerKind kind = LayerKind.of(n.getOpType());
            if (kind == null || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() < 2) {
                continue;
            }
            int position = counts.merge(kind, 1, Integer::sum) - 1;
            TensorProto w = fg.initializer(n.getInput(1));
            if (w == null || w.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
                continue;
            }
            byKindAndShape.computeIfAbsent(key(kind, Tensors.dims(w)), k -> new ArrayList<>())
                    .add(new Candidate(n, position));
        }
    }

    /** The float weight of a candidate, read where it is (a big model's mapped weights are not copied). */
    public FloatBuffer weight(Candidate c) {
        String name = c.node().getInput(1);
        FloatBuffer v = decoded.get(name);
        if (v == null) {
            v = Tensors.floatView(fg.initializer(name));
            if (cached + v.limit() <= CACHE_FLOATS) {
                decoded.put(name, v);
                cached += v.limit();
            }
        }
        return v;
    }

    /**
     * The float layer whose weight is closest to {@code wq} (element {@code i} of the dequantized
     * weight, shaped {@code dims}, output channels along {@code axis}) among those of {@code kind}
     * that {@code allowed} accepts, within {@link #MAX_ERROR}; among candidates within 1.5× the
     * best error, one not in {@code used}, then the one nearest {@code position}. Null if none.
     */
    public Pick closest(LayerKind kind, long[] dims, int axis, IntToDoubleFunction wq, int position,
            Set<NodeProto> used, Predicate<Candidate> allowed) {
        return closest(kind, dims, axis, wq, position, used, allowed, c -> null);
    }

    /**
     * As {@link #closest(LayerKind, long[], int, IntToDoubleFunction, int, Set, Predicate)}, each
     * candidate's float weight scaled per output channel by {@code rescale} (null: by 1) first.
     */
    public Pick closest(LayerKind kind, long[] dims, int axis, IntToDoubleFunction wq, int position,
            Set<NodeProto> used, Predicate<Candidate> allowed, Function<Candidate, float[]> rescale) {
        int n = 1;
        for (long d : dims) {
            n = Math.multiplyExact(n, (int) d);
        }
        return closest(kind, dims, axis, values(wq, n), position, used, allowed, rescale);
    }

    /**
     * As {@link #closest(LayerKind, long[], int, IntToDoubleFunction, int, Set, Predicate, Function)} with the
     * quantized weight's values in {@code wq} (read once: every candidate of the kind and shape is compared with it).
     */
    public Pick closest(LayerKind kind, long[] dims, int axis, float[] wq, int position,
            Set<NodeProto> used, Predicate<Candidate> allowed, Function<Candidate, float[]> rescale) {
        List<Pick> close = new ArrayList<>();
        double best = Double.POSITIVE_INFINITY;
        for (Candidate c : byKindAndShape.getOrDefault(key(kind, dims), List.of())) {
            if (!allowed.test(c)) {
                continue;
            }
            double e = error(wq, weight(c), rescale.apply(c), dims, axis);
            if (e <= MAX_ERROR) {
                close.add(new Pick(c, e));
                best = Math.min(best, e);
            }
        }
        Pick chosen = null;
        for (Pick p : close) {
            if (p.error() > 1.5 * best + 1e-9) {
                continue;
            }
            if (chosen == null || better(p.candidate(), chosen.candidate(), used, position)) {
                chosen = p;
            }
        }
        return chosen;
    }

    /** The float layer {@code node} as a candidate, if it is one of {@code kind} with a weight shaped {@code dims}. */
    public Candidate candidate(NodeProto node, LayerKind kind, long[] dims) {
        for (Candidate c : byKindAndShape.getOrDefault(key(kind, dims), List.of())) {
            if (c.node() == node) {
                return c;
            }
        }
        return null;
    }

    private static boolean better(Candidate c, Candidate than, Set<NodeProto> used, int position) {
        boolean cFree = !used.contains(c.node());
        boolean tFree = !used.contains(than.node());
        if (cFree != tFree) {
            return cFree;
        }
        return Math.abs(c.position() - position) < Math.abs(than.position() - position);
    }

    private static String key(LayerKind kind, long[] dims) {
        return kind + Arrays.toString(dims);
    }

    /** {@link #error(IntToDoubleFunction, FloatBuffer, float[], long[], int)} without a rescale. */
    public static double error(IntToDoubleFunction wq, FloatBuffer wf, long[] dims, int axis) {
        return error(wq, wf, null, dims, axis);
    }

    /**
     * Σ_c min_{r≥0} ‖w_q,c − r·w_f,c‖² / ‖w_q‖², channels along {@code axis} of {@code dims}, the
     * float weight first multiplied by the sign of {@code rescale[c]} (null: by 1): per channel
     * ‖w_q,c‖² − max(0, w_q,c·w_f,c)² / ‖w_f,c‖².
     */
    public static double error(IntToDoubleFunction wq, FloatBuffer wf, float[] rescale, long[] dims, int axis) {
        return error(values(wq, wf.limit()), wf, rescale, dims, axis);
    }

    private static float[] values(IntToDoubleFunction wq, int n) {
        float[] q = new float[n];
        for (int i = 0; i < n; i++) {
            q[i] = (float) wq.applyAsDouble(i);
        }
        return q;
    }

    /** As {@link #error(IntToDoubleFunction, FloatBuffer, float[], long[], int)} with the quantized weight's values in {@code wq}. */
    public static double error(float[] wq, FloatBuffer wf, float[] rescale, long[] dims, int axis) {
        int channels = (int) dims[axis];
        double[] qq = new double[channels];
        double[] qf = new double[channels];
        double[] ff = new double[channels];
        ChannelRuns.walk(wf, channels, QuantMath.innerSize(dims, axis), new ChannelRuns.Kernel() {
            @Override
            public void acrossChannels(float[] a, int off, int i, int len, int c) {
                for (int t = 0; t < len; t++) {
                    double q = wq[i + t];
                    double f = rescale != null && rescale[c + t] < 0 ? -a[off + t] : a[off + t];
                    qq[c + t] += q * q;
                    qf[c + t] += q * f;
                    ff[c + t] += f * f;
                }
            }

            @Override
            public void withinChannel(float[] a, int off, int i, int len, int c) {
                boolean negate = rescale != null && rescale[c] < 0;
                double sqq = 0;
                double sqf = 0;
                double sff = 0;
                for (int t = 0; t < len; t++) {
                    double q = wq[i + t];
                    double f = negate ? -a[off + t] : a[off + t];
                    sqq += q * q;
                    sqf += q * f;
                    sff += f * f;
                }
                qq[c] += sqq;
                qf[c] += sqf;
                ff[c] += sff;
            }
        });
        double num = 0;
        double den = 0;
        double floats = 0;
        for (int k = 0; k < channels; k++) {
            den += qq[k];
            floats += ff[k];
            // A negative factor would pair a weight with its negation: another layer's.
            num += ff[k] > 0 && qf[k] > 0 ? Math.max(0, qq[k] - qf[k] * qf[k] / ff[k]) : qq[k];
        }
        // An all-zero quantized weight is only the same layer as an all-zero float weight.
        return den > 0 ? num / den : (floats > 0 ? Double.POSITIVE_INFINITY : 0);
    }
}
