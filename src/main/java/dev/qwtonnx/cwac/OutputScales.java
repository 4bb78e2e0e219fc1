package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The re-quantizing QuantizeLinear between a layer and its bias Add (MatMul → Q → DQ → Add, as
 * ORT's quantize_static writes it) and its scale: what output-level acceptance may refit. Only
 * there: these requantizations take a min-max range that a few outliers set, so their step is far
 * coarser than the output needs, and a smaller y_scale recovers much of the output error; the Q
 * after a Conv is not refitted, as a lower squared output error there does not carry over to what a
 * detector's users measure (the text map's IoU). The scale is a per-tensor initializer read only by
 * that Q and the DequantizeLinear nodes reading the Q's output, so that changing it changes only
 * this one requantization (in ORT's fused QLinearConv/QLinearMatMul, the kernel's y_scale) and
 * nothing else; the zero point is kept. Not where the output feeds a Conv or Gemm with an int32
 * bias, whose bias scale must stay x_scale·w_scale.
 */
final class OutputScales {
    private OutputScales() {
    }

    /** The scale initializers of the stage's output requantizations that can be refitted, in stage order. */
    static List<String> of(Model model, List<QdqLayer> stage) {
        GraphEditor g = new GraphEditor(model.graph());
        Set<String> out = new LinkedHashSet<>();
        for (QdqLayer l : stage) {
            NodeProto layer = null;
            for (NodeProto n : g.consumers(l.input())) {
                if (n.getName().equals(l.name())) {
                    layer = n;
                }
            }
            if (layer == null) {
                continue;
            }
            if (l.biasAdd() == null) {
                continue;
            }
            // QDQ: the Q reading the layer's float output; QOperator: the node itself requantizes (y_scale, input 6).
            // (A QOperator node with a float output, MatMulIntegerToFloat, has no requantization to refit.)
            String scale = l.qlinear() == null ? requantScale(g, layer.getOutput(0))
                    : l.qlinear().yScale() != null ? requantScale(g, layer, layer.getInputList().indexOf(l.qlinear().yScale()))
                    : null;
            if (scale != null) {
                out.add(scale);
            }
        }
        return new ArrayList<>(out);
    }

    private static String requantScale(GraphEditor g, String tensor) {
        if (g.isGraphOutput(tensor)) {
            return null;
        }
        List<NodeProto> readers = g.consumers(tensor);
        if (readers.size() != 1 || !readers.get(0).getOpType().equals("QuantizeLinear")
                || !Model.isDefaultDomain(readers.get(0).getDomain()) || readers.get(0).getInputCount() < 2) {
            return null;
        }
        return requantScale(g, readers.get(0), 1);
    }

    /** The scale (input {@code scaleIndex}) with which node {@code q} writes its integer output, if refittable. */
    private static String requantScale(GraphEditor g, NodeProto q, int scaleIndex) {
        String scale = q.getInput(scaleIndex);
        TensorProto s = g.initializer(scale);
        if (s == null || s.getDataType() != TensorProto.DataType.FLOAT_VALUE || Tensors.floats(s).length != 1) {
            return null;
        }
        // Readers of the scale: the Q, and DequantizeLinear nodes of the Q's output only.
        for (NodeProto r : g.consumers(scale)) {
            boolean pairedDq = r.getOpType().equals("DequantizeLinear") && r.getInput(0).equals(q.getOutput(0));
            if (!r.equals(q) && !pairedDq) {
                return null;
            }
        }
        for (NodeProto r : g.consumers(q.getOutput(0))) {
            if (!r.getOpType().equals("DequantizeLinear") || r.getInputCount() < 2 || !r.getInput(1).equals(scale)) {
                return null; // a reader with its own scale (a fused kernel's input) would see a changed value
            }
            for (NodeProto next : g.consumers(r.getOutput(0))) {
                // The next layer's int32 bias is quantized at x_scale·w_scale: ORT fuses it only while that holds.
                if (next.getInputCount() > 2 && !next.getInput(2).isEmpty()
                        && (next.getOpType().equals("Conv") || next.getOpType().equals("Gemm"))) {
                    return null;
                }
            }
        }
        return g.isGraphOutput(q.getOutput(0)) ? null : scale;
    }

    /** The model with each named scale multiplied by its factor (nothing else changes). */
    static Model scaled(Model model, Map<String, Double> factors) {
        GraphEditor g = new GraphEditor(model.graph());
        for (Map.Entry<String, Double> e : factors.entrySet()) {
            TensorProto t = g.initializer(e.getKey());
            float[] v = Tensors.floats(t);
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (v[i] * e.getValue());
            }
            g.putInitializer(Tensors.floatTensor(t.getName(), Tensors.dims(t), v));
        }
        return model.withGraph(g.build());
    }
}
