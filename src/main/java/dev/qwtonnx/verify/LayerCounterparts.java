package dev.qwtonnx.verify;

import dev.qwtonnx.cwac.WeightPairing;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Pairs each quantized layer with the float model's node of the same role. A layer our quantizer
 * made names the float node it came from ({@link Nodes#FROM}): that node, where its weight agrees
 * ({@link WeightPairing#error} within {@link WeightPairing#MAX_ERROR}). Another tool's layer (or
 * ours, where that node is not there) is paired by weights, by {@link WeightPairing}, the pairing
 * compensation uses for another tool's model. Node names never decide. A QOperator layer whose
 * output cannot hold negative values has its float node's Relu fused into it; its float
 * counterpart's output is then that Relu's.
 */
public final class LayerCounterparts {
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
     * @param weightCosine cosine of the dequantized weight and the float weight (for the report)
     */
    public record Match(QuantizedLayers.Layer layer, String floatNode, String floatOutput, boolean floatRelu,
            String floatWeight, String matchedBy, double weightCosine) {
    }

    public record Result(List<Match> matched, List<QuantizedLayers.Layer> unmatched) {
    }

    public static Result match(Model floatModel, List<QuantizedLayers.Layer> layers) {
        GraphEditor g = new GraphEditor(floatModel.graph());
        WeightPairing pairing = new WeightPairing(g);
        Map<String, NodeProto> byName = new HashMap<>();
        for (NodeProto n : g.nodes()) {
            byName.putIfAbsent(n.getName(), n);
        }
        List<Match> matched = new ArrayList<>();
        List<QuantizedLayers.Layer> unmatched = new ArrayList<>();
        Map<LayerKind, Integer> positions = new HashMap<>();
        Set<NodeProto> used = Collections.newSetFromMap(new IdentityHashMap<>());
        for (QuantizedLayers.Layer l : layers) {
            LayerKind kind = LayerKind.of(l.opType());
            int position = positions.merge(kind, 1, Integer::sum) - 1;
            // Decoded once: compared with the recorded layer's weight, or with every candidate's, and for the cosine.
            float[] weight = l.weight().get().values();
            NodeProto from = l.from() == null ? null : byName.get(l.from());
            WeightPairing.Candidate recorded = from == null ? null : pairing.candidate(from, kind, l.weightDims());
            if (recorded != null && WeightPairing.error(weight, pairing.weight(recorded), null, l.weightDims(),
                    l.weightAxis()) <= WeightPairing.MAX_ERROR) {
                matched.add(match(g, l, recorded, "provenance+weight", pairing, weight));
                used.add(from);
                continue;
            }
            WeightPairing.Pick pick = pairing.closest(kind, l.weightDims(), l.weightAxis(), weight, position, used,
                    c -> true, c -> null);
            if (pick == null) {
                unmatched.add(l);
            } else {
                matched.add(match(g, l, pick.candidate(), "weight", pairing, weight));
                used.add(pick.candidate().node());
            }
        }
        return new Result(matched, unmatched);
    }

    private static Match match(GraphEditor g, QuantizedLayers.Layer l, WeightPairing.Candidate c, String by,
            WeightPairing pairing, float[] weight) {
        double cos = Fidelity.cosine(pairing.weight(c), weight);
        return match(g, l, c.node(), by, cos);
    }

    private static Match match(GraphEditor g, QuantizedLayers.Layer l, NodeProto n, String by, double cos) {
        String out = n.getOutput(0);
        String w = n.getInput(1);
        List<NodeProto> readers = g.consumers(out);
        if (l.outputFloorsAtZero() && readers.size() == 1 && readers.get(0).getOpType().equals("Relu")
                && !g.isGraphOutput(out)) {
            return new Match(l, n.getName(), readers.get(0).getOutput(0), true, w, by, cos);
        }
        return new Match(l, n.getName(), out, false, w, by, cos);
    }
}
