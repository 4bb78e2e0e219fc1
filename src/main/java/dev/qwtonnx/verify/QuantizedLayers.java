package dev.qwtonnx.verify;

import dev.qwtonnx.cwac.DequantizedWeight;
import dev.qwtonnx.cwac.LayerFinder;
import dev.qwtonnx.cwac.LayerFinder.Style;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * The quantized layers of any int8 model that verification measures, as {@link LayerFinder} finds
 * them, each with the float tensors that play the layer's roles, so that the float model's
 * counterpart can be matched and compared.
 */
public final class QuantizedLayers {
    private QuantizedLayers() {
    }

    /**
     * One quantized layer.
     *
     * @param node       the layer node's name
     * @param opType     the float op it computes: Conv, MatMul or Gemm
     * @param style      QDQ, QOperator or dynamic
     * @param floatInput the float activation the layer quantizes (what a float copy of it would read);
     *                   null for QOperator layers, whose input is dequantized when measuring
     * @param output     the tensor holding the layer's result (before any bias Add or output Q); for
     *                   QOperator layers the quantized output, to be dequantized with the two below
     * @param outputScale     QOperator only: the output's scale (else null)
     * @param outputZeroPoint QOperator only: the output's zero point (else null)
     * @param outputFloorsAtZero QOperator only: the output's zero point is its type's minimum, so it
     *                   holds no negative value (a Relu fused into the output quantization)
     * @param weight     the weight in float, dequantized as far as the graph says (scale may be
     *                   missing for dynamic layers, which is fine for matching by direction)
     * @param weightDims the weight's dims
     * @param weightAxis the weight's axis of output channels
     * @param from       the float node our quantizer recorded it was made from ({@link Nodes#FROM}),
     *                   or null (another tool's model)
     * @param quantizedInput QOperator only: the layer's quantized input, its scale and zero point (else empty)
     * @param outputBias QOperator only: a float bias the operator adds to its float output (MatMulIntegerToFloat's
     *                   bias input), to be taken off before comparing with the float MatMul; else null
     */
    public record Layer(String node, String opType, Style style, String floatInput, String output,
            String outputScale, String outputZeroPoint, boolean outputFloorsAtZero, Supplier<DequantizedWeight> weight,
            long[] weightDims, int weightAxis, String from, List<String> quantizedInput, String outputBias) {
        public Layer {
            quantizedInput = List.copyOf(quantizedInput);
        }
    }

    /**
     * The layers {@link LayerFinder} finds whose output this package can measure: QDQ Conv / MatMul /
     * Gemm, QLinearConv / QLinearMatMul, and MatMulInteger / ConvInteger rescaled to float by Cast →
     * Mul; each of a constant weight.
     */
    public static List<Layer> find(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        List<Layer> out = new ArrayList<>();
        for (LayerFinder.Found f : LayerFinder.find(g)) {
            NodeProto n = f.node();
            boolean microsoft = !Model.isDefaultDomain(n.getDomain());
            if (microsoft && !n.getOpType().equals("MatMulIntegerToFloat") && !n.getOpType().equals("QGemm")
                    || !g.isInitializer(f.weight())) {
                continue;
            }
            long[] dims = Tensors.dims(g.initializer(f.weight()));
            Supplier<DequantizedWeight> w = dequantized(g, f.weight(), f.weightScale(), f.weightZeroPoint(), f.weightAxis());
            if (w == null) {
                continue;
            }
            String opType = f.kind().opType;
            String from = Nodes.metadata(n, Nodes.FROM);
            int axis = f.kind().weightAxis(n);
            switch (f.style()) {
                case QDQ -> out.add(new Layer(n.getName(), opType, Style.QDQ, n.getInput(0), n.getOutput(0), null,
                        null, false, w, dims, axis, from, List.of(), null));
                case DYNAMIC -> {
                    String output = rescaledOutput(g, n.getOutput(0));
                    NodeProto xq = g.producer(n.getInput(0));
                    String floatInput = isOp(xq, "DynamicQuantizeLinear") ? xq.getInput(0) : null;
                    if (output != null) {
                        out.add(new Layer(n.getName(), opType, Style.DYNAMIC, floatInput, output, null, null, false, w,
                                dims, axis, from, List.of(), null));
                    }
                }
                // The float input is the dequantized x (x, x_scale, x_zero_point): measuring adds it.
                case QOPERATOR -> out.add(qoperator(g, n, opType, w, dims, axis, from));
            }
        }
        return out;
    }

    /**
     * A QOperator layer. QLinearConv / QLinearMatMul (x, x_scale, x_zp, w, w_scale, w_zp, y_scale,
     * y_zp[, bias]) and com.microsoft QGemm (A, a_scale, a_zp, B, b_scale, b_zp[, C, y_scale, y_zp])
     * quantize their output when given y_scale; com.microsoft MatMulIntegerToFloat (A, B, a_scale,
     * b_scale[, a_zp, b_zp, bias]) writes float with its bias added.
     */
    private static Layer qoperator(GraphEditor g, NodeProto n, String opType, Supplier<DequantizedWeight> w,
            long[] dims, int axis, String from) {
        String name = n.getName();
        if (n.getOpType().equals("MatMulIntegerToFloat")) {
            return new Layer(name, opType, Style.QOPERATOR, null, n.getOutput(0), null, null, false, w, dims, axis, from,
                    List.of(n.getInput(0), n.getInput(2), input(n, 4)), input(n, 6).isEmpty() ? null : n.getInput(6));
        }
        int yScale = n.getOpType().equals("QGemm") ? 7 : 6;
        String scale = input(n, yScale);
        String zeroPoint = input(n, yScale + 1);
        return new Layer(name, opType, Style.QOPERATOR, null, n.getOutput(0), scale.isEmpty() ? null : scale,
                zeroPoint.isEmpty() ? null : zeroPoint, !scale.isEmpty() && floorsAtZero(g.initializer(zeroPoint)), w,
                dims, axis, from, List.of(n.getInput(0), n.getInput(1), input(n, 2)), null);
    }

    /** Input {@code i} of {@code n}, or "" when absent. */
    private static String input(NodeProto n, int i) {
        return i < n.getInputCount() ? n.getInput(i) : "";
    }

    /** Whether a zero point is its type's minimum (0 for uint8, -128 for int8). */
    private static boolean floorsAtZero(TensorProto zp) {
        if (zp == null) {
            return false;
        }
        float[] v = Tensors.floats(zp);
        float min = zp.getDataType() == TensorProto.DataType.INT8_VALUE ? -128 : 0;
        return v.length == 1 && v[0] == min;
    }

    /** The float tensor an int32 accumulator becomes: through a Cast to float and the Mul(s) by scales. */
    private static String rescaledOutput(GraphEditor g, String acc) {
        List<NodeProto> readers = g.consumers(acc);
        if (readers.size() != 1 || !readers.get(0).getOpType().equals("Cast")) {
            return null;
        }
        String t = readers.get(0).getOutput(0);
        String last = null;
        while (true) {
            List<NodeProto> r = g.consumers(t);
            if (r.size() != 1 || !r.get(0).getOpType().equals("Mul")) {
                return last;
            }
            NodeProto mul = r.get(0);
            String other = mul.getInput(0).equals(t) ? mul.getInput(1) : mul.getInput(0);
            NodeProto otherProducer = g.producer(other);
            // A scale is a constant or a product of scalars (activation scale × weight scale); a Mul
            // with another activation would be the next layer's work, not a rescale.
            if (!g.isInitializer(other) && (otherProducer == null || !otherProducer.getOpType().equals("Mul")
                    && !otherProducer.getOpType().equals("DynamicQuantizeLinear"))) {
                return last;
            }
            t = mul.getOutput(0);
            last = t;
        }
    }

    /**
     * The dequantized weight, decoded when asked for (the weights of a big model would not fit in
     * the heap all at once); null when q, scale or zero point is not constant.
     */
    static Supplier<DequantizedWeight> dequantized(GraphEditor g, String q, String scale, String zeroPoint,
            long axis) {
        return DequantizedWeight.constant(g, q, scale, zeroPoint)
                ? () -> DequantizedWeight.of(g, q, scale, zeroPoint, axis) : null;
    }

    static boolean isOp(NodeProto n, String op) {
        return n != null && n.getOpType().equals(op) && Model.isDefaultDomain(n.getDomain());
    }
}
