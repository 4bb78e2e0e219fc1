package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerKind;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Pairs the quantized layers of a model made by another tool with the layers of the float model it
 * came from, without trusting names (tools rename tensors and nodes): by weights, through
 * {@link WeightPairing}. A float Conv followed by a BatchNormalization that the quantized model no
 * longer has is paired with that BatchNorm as part of its layer.
 *
 * <p>Also checks that each layer can be folded without touching anything but its own scale and
 * bias initializers (no shared scale, weight or bias), so that the compensated model keeps the
 * other tool's nodes, names and order exactly. A layer that fails is listed with the reason.
 */
public final class ForeignLayers {
    private ForeignLayers() {
    }

    /** The layers to compensate, their float counterparts by layer name, and why others were left. */
    public record Result(List<QdqLayer> layers, Map<String, FloatLayer> floats, List<String> skipped) {
    }

    public static Result map(Model floatModel, Model quantModel) {
        QdqLayers.Result found = QdqLayers.find(quantModel);
        List<String> skipped = new ArrayList<>(found.skipped());
        GraphEditor fg = new GraphEditor(floatModel.graph());
        GraphEditor qg = new GraphEditor(quantModel.graph());
        Map<String, Integer> nameCounts = new HashMap<>();
        for (NodeProto n : qg.nodes()) {
            nameCounts.merge(n.getName(), 1, Integer::sum);
        }
        WeightPairing pairing = new WeightPairing(fg);
        Map<LayerKind, Integer> quantCounts = new HashMap<>();
        Set<NodeProto> used = Collections.newSetFromMap(new IdentityHashMap<>());
        List<QdqLayer> layers = new ArrayList<>();
        Map<String, FloatLayer> floats = new LinkedHashMap<>();
        for (QdqLayer l : found.layers()) {
            int position = quantCounts.merge(l.kind(), 1, Integer::sum) - 1;
            String what = l.kind().opType + " node '" + l.name() + "'";
            if (l.name().isEmpty() || nameCounts.get(l.name()) != 1) {
                skipped.add(what + ": its node name is empty or not unique");
                continue;
            }
            String unfoldable = unfoldable(qg, l);
            if (unfoldable != null) {
                skipped.add(what + ": " + unfoldable);
                continue;
            }
            NodeProto layerNode = null;
            for (NodeProto n : qg.consumers(l.input())) {
                if (n.getName().equals(l.name())) {
                    layerNode = n;
                }
            }
            LayerFinder.Found f = LayerFinder.recognize(qg, layerNode);
            TensorProto wq = qg.initializer(f.weight());
            DequantizedWeight dequantized = DequantizedWeight.of(qg, f.weight(), f.weightScale(), f.weightZeroPoint(),
                    f.weightAxis());
            long[] dims = Tensors.dims(wq);
            boolean quantHasBatchNorm = readBy(qg, layerNode.getOutput(0), "BatchNormalization");
            // A float Conv followed by a BatchNorm the quantized model no longer has was folded with it: the float
            // weights are compared as folding scales them, per channel by γ/√(σ²+ε), and the BatchNorm, which must be
            // constant, is part of the float layer. Where the BatchNorm is still there, the layers are compared before it.
            Map<NodeProto, NodeProto> folded = new IdentityHashMap<>();
            Map<NodeProto, float[]> rescales = new IdentityHashMap<>();
            Predicate<WeightPairing.Candidate> usable = c -> {
                NodeProto bn = soleReader(fg, c.node().getOutput(0), "BatchNormalization");
                if (bn == null || quantHasBatchNorm || l.kind() != LayerKind.CONV) {
                    return true;
                }
                float[] rescale = batchNormScale(fg, bn, l.channels());
                if (rescale == null) {
                    return false;
                }
                folded.put(c.node(), bn);
                rescales.put(c.node(), rescale);
                return true;
            };
            WeightPairing.Pick pick = pairing.closest(l.kind(), dims, l.kind().weightAxis(layerNode),
                    dequantized.values(), position, used, usable, c -> rescales.get(c.node()));
            if (pick == null) {
                skipped.add(what + ": no float " + l.kind().opType + " layer has these weights");
                continue;
            }
            NodeProto chosenNode = pick.candidate().node();
            List<NodeProto> tail = new ArrayList<>();
            if (folded.containsKey(chosenNode)) {
                tail.add(folded.get(chosenNode));
            }
            String output = tail.isEmpty() ? chosenNode.getOutput(0) : tail.get(tail.size() - 1).getOutput(0);
            if (l.quantizedOutput() && !readBy(qg, layerNode.getOutput(0), "Relu")) {
                // A QOperator layer's integer output has the Relu after it folded into its range: compare with the
                // float Relu's output, not with the values the Relu would cut.
                NodeProto relu = soleReader(fg, output, "Relu");
                if (relu != null) {
                    tail.add(relu);
                    output = relu.getOutput(0);
                }
            }
            // A Conv or Gemm reading a float bias adds it itself (biasAdd names the node), as its float layer does.
            if (l.biasAdd() != null && !(l.kind() != LayerKind.MATMUL && l.biasAdd().equals(l.name()))) {
                NodeProto add = soleReader(fg, output, "Add");
                if (add == null) {
                    skipped.add(what + ": its float layer " + chosenNode.getName() + " is not followed by a bias Add");
                    continue;
                }
                tail.add(add);
                output = add.getOutput(0);
            }
            used.add(chosenNode);
            layers.add(l);
            floats.put(l.name(), new FloatLayer(chosenNode, tail, output));
        }
        return new Result(layers, floats, skipped);
    }

    /**
     * Why folding into this layer would change more than its own scale and bias initializers, or
     * null: every constant the fold rewrites, and the weight's DequantizeLinear, must serve only it.
     */
    private static String unfoldable(GraphEditor g, QdqLayer l) {
        if (l.qlinear() != null) {
            // The QOperator node reads its weight scale and int32 bias itself: they must serve it alone.
            if (g.useCount(l.weightScale()) != 1) {
                return "its weight scale is shared with another node";
            }
            for (String init : new String[] {l.biasQuantized(), l.biasAddConst()}) {
                if (init != null && g.useCount(init) != 1) {
                    return "its bias constant '" + init + "' is shared with another node";
                }
            }
            return null;
        }
        NodeProto wdq = null;
        for (NodeProto n : g.consumers(l.weightScale())) {
            if (n.getOpType().equals("DequantizeLinear")) {
                wdq = n;
            }
        }
        if (g.useCount(l.weightScale()) != 1 || wdq == null || g.useCount(wdq.getOutput(0)) != 1) {
            return "its weight or weight scale is shared with another node";
        }
        for (String init : new String[] {l.biasQuantized(), l.biasScale(), l.biasAddConst()}) {
            if (init != null && g.useCount(init) != 1) {
                return "its bias constant '" + init + "' is shared with another node";
            }
        }
        if (l.biasQuantized() != null) {
            NodeProto bdq = g.consumers(l.biasQuantized()).get(0);
            if (bdq.getInputCount() > 2 && !bdq.getInput(2).isEmpty()) {
                TensorProto zp = g.initializer(bdq.getInput(2));
                if (zp == null || java.util.Arrays.stream(Tensors.longs(zp)).anyMatch(v -> v != 0)) {
                    return "its bias has a non-zero zero point";
                }
            }
        }
        return null;
    }

    /** γ/√(σ²+ε) of a BatchNormalization with constant parameters, or null. */
    private static float[] batchNormScale(GraphEditor g, NodeProto bn, int channels) {
        if (bn.getInputCount() < 5) {
            return null;
        }
        TensorProto gamma = g.initializer(bn.getInput(1));
        TensorProto var = g.initializer(bn.getInput(4));
        for (int i = 2; i < 5; i++) {
            if (g.initializer(bn.getInput(i)) == null) {
                return null;
            }
        }
        if (gamma == null || var == null || Tensors.floats(gamma).length != channels) {
            return null;
        }
        float eps = Nodes.floatAttr(bn, "epsilon", 1e-5f);
        float[] gv = Tensors.floats(gamma);
        float[] vv = Tensors.floats(var);
        float[] r = new float[channels];
        for (int c = 0; c < channels; c++) {
            r[c] = (float) (gv[c] / Math.sqrt(vv[c] + eps));
        }
        return r;
    }

    private static NodeProto soleReader(GraphEditor g, String tensor, String opType) {
        if (g.isGraphOutput(tensor)) {
            return null;
        }
        List<NodeProto> readers = g.consumers(tensor);
        return readers.size() == 1 && readers.get(0).getOpType().equals(opType)
                && Model.isDefaultDomain(readers.get(0).getDomain()) ? readers.get(0) : null;
    }

    /** Whether an {@code opType} node reads the tensor, directly or through a QuantizeLinear → DequantizeLinear pair. */
    private static boolean readBy(GraphEditor g, String tensor, String opType) {
        for (NodeProto n : g.consumers(tensor)) {
            if (n.getOpType().equals(opType)) {
                return true;
            }
            if (n.getOpType().equals("DequantizeLinear") // a QOperator layer's integer output
                    && g.consumers(n.getOutput(0)).stream().anyMatch(r -> r.getOpType().equals(opType))) {
                return true;
            }
            if (n.getOpType().equals("QuantizeLinear")) {
                for (NodeProto dq : g.consumers(n.getOutput(0))) {
                    if (dq.getOpType().equals("DequantizeLinear")
                            && g.consumers(dq.getOutput(0)).stream().anyMatch(r -> r.getOpType().equals(opType))) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
