package dev.qwtonnx.verify;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pairs each quantized layer with the float model's node of the same role, through the graph: the
 * quantized weight, dequantized, must point the same way as the float node's constant weight (cosine
 * ≥ {@value #MIN_WEIGHT_COSINE}). A layer our quantizer made names the float node it came from
 * ({@link Nodes#FROM}): that node is tried first; another tool's layer (or ours, where that node is
 * not there) is paired with the best-matching weight of the same shape. Node names never decide. A
 * QOperator layer whose output cannot hold negative values has its float node's Relu fused into it;
 * its float counterpart's output is then that Relu's.
 */
public final class LayerCounterparts {
    /** Quantization and compensation keep a weight's direction well above this; unrelated weights are near 0. */
    static final double MIN_WEIGHT_COSINE = 0.9;

    private LayerCounterparts() {
    }

    /**
     * A matched pair.
     *
     * @param floatNode    the float model's node name
     * @param floatOutput  its output, or its Relu's (the tensor of the same role as the layer's output)
     * @param floatRelu    whether floatOutput is the output of a Relu after the float node
     * @param floatWeight  the float weight initializer
     * @param matchedBy    "provenance+weight" or "weight"
     * @param weightCosine cosine of the dequantized weight and the float weight
     */
    public record Match(QuantizedLayers.Layer layer, String floatNode, String floatOutput, boolean floatRelu,
            String floatWeight, String matchedBy, double weightCosine) {
    }

    public record Result(List<Match> matched, List<QuantizedLayers.Layer> unmatched) {
    }

    private record Candidate(NodeProto node, String weight, long[] dims) {
    }

    /** Decoded float weights, cached while they total less than this (a big model's would not fit). */
    private static final long CACHE_FLOATS = 64L << 20;

    public static Result match(Model floatModel, List<QuantizedLayers.Layer> layers) {
        GraphEditor g = new GraphEditor(floatModel.graph());
        List<Candidate> candidates = new ArrayList<>();
        Map<String, Candidate> byName = new HashMap<>();
        Map<String, FloatBuffer> decoded = new HashMap<>();
        long[] cached = {0};
        // A view of the payload where it holds floats (a big model's mapped weights are not copied).
        java.util.function.Function<Candidate, FloatBuffer> values = c -> {
            FloatBuffer v = decoded.get(c.weight());
            if (v == null) {
                v = Tensors.floatView(g.initializer(c.weight()));
                if (cached[0] + v.limit() <= CACHE_FLOATS) {
                    decoded.put(c.weight(), v);
                    cached[0] += v.limit();
                }
            }
            return v;
        };
        for (NodeProto n : g.nodes()) {
            if (!Model.isDefaultDomain(n.getDomain()) || n.getInputCount() < 2
                    || !List.of("Conv", "MatMul", "Gemm").contains(n.getOpType())) {
                continue;
            }
            TensorProto w = g.initializer(n.getInput(1));
            if (w == null || w.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
                continue;
            }
            Candidate c = new Candidate(n, w.getName(), Tensors.dims(w));
            candidates.add(c);
            if (!n.getName().isEmpty()) {
                byName.put(n.getName(), c);
            }
        }
        List<Match> matched = new ArrayList<>();
        List<QuantizedLayers.Layer> unmatched = new ArrayList<>();
        for (QuantizedLayers.Layer l : layers) {
            QuantizedLayers.Dequantized weight = l.weight().get();
            Candidate recorded = l.from() == null ? null : byName.get(l.from());
            if (recorded != null && fits(recorded, l)) {
                double cos = Fidelity.cosine(values.apply(recorded), weight.size(), weight::get);
                if (cos >= MIN_WEIGHT_COSINE) {
                    matched.add(match(g, l, recorded, "provenance+weight", cos));
                    continue;
                }
            }
            Candidate best = null;
            double bestCos = MIN_WEIGHT_COSINE;
            for (Candidate c : candidates) {
                if (fits(c, l)) {
                    double cos = Fidelity.cosine(values.apply(c), weight.size(), weight::get);
                    if (cos >= bestCos) {
                        best = c;
                        bestCos = cos;
                    }
                }
            }
            if (best == null) {
                unmatched.add(l);
            } else {
                matched.add(match(g, l, best, "weight", bestCos));
            }
        }
        return new Result(matched, unmatched);
    }

    private static Match match(GraphEditor g, QuantizedLayers.Layer l, Candidate c, String by, double cos) {
        String out = c.node().getOutput(0);
        List<NodeProto> readers = g.consumers(out);
        if (l.outputFloorsAtZero() && readers.size() == 1 && readers.get(0).getOpType().equals("Relu")
                && !g.isGraphOutput(out)) {
            return new Match(l, c.node().getName(), readers.get(0).getOutput(0), true, c.weight(), by, cos);
        }
        return new Match(l, c.node().getName(), out, false, c.weight(), by, cos);
    }

    private static boolean fits(Candidate c, QuantizedLayers.Layer l) {
        return c.node().getOpType().equals(l.opType()) && Arrays.equals(c.dims(), l.weightDims());
    }
}
