package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.quant.LayerKind;
import java.util.ArrayList;
import java.util.List;

/**
 * The one finder of quantized layers, by structure, so that models from other tools work too:
 * QDQ (a float Conv / MatMul / Gemm reading a DequantizeLinear activation and a DequantizeLinear
 * weight), QOperator (QLinearConv, QLinearMatMul, com.microsoft QGemm and MatMulIntegerToFloat)
 * and dynamic (MatMulInteger, ConvInteger, com.microsoft DynamicQuantizeMatMul). Each is given with
 * the edges where its weight is read; whether a layer can be folded into ({@link QdqLayers}) or
 * measured ({@code verify.QuantizedLayers}) is for each user to check.
 */
public final class LayerFinder {
    private LayerFinder() {
    }

    /** How the layer is expressed in the quantized graph. */
    public enum Style {
        QDQ, QOPERATOR, DYNAMIC
    }

    private static final String MS_DOMAIN = dev.qwtonnx.model.Model.MICROSOFT_DOMAIN;

    /**
     * One quantized layer node.
     *
     * @param node            the layer node
     * @param kind            the float operator it computes
     * @param style           its form
     * @param weight          the integer weight tensor (for QDQ, what the weight's DequantizeLinear reads)
     * @param weightScale     the weight's scale tensor, or null (dynamic layers other than
     *                        DynamicQuantizeMatMul have none)
     * @param weightZeroPoint the weight's zero point tensor, or null
     * @param weightAxis      the weight's axis of output channels (a QDQ weight's: its
     *                        DequantizeLinear's axis attribute)
     * @param weightDq        QDQ only: the weight's DequantizeLinear (else null)
     */
    public record Found(NodeProto node, LayerKind kind, Style style, String weight, String weightScale,
            String weightZeroPoint, int weightAxis, NodeProto weightDq) {
    }

    public static List<Found> find(GraphEditor g) {
        List<Found> out = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            Found f = recognize(g, n);
            if (f != null) {
                out.add(f);
            }
        }
        return out;
    }

    /** The node as a quantized layer, or null. */
    static Found recognize(GraphEditor g, NodeProto n) {
        String op = n.getOpType();
        if (MS_DOMAIN.equals(n.getDomain())) {
            return switch (op) {
                // A, a_scale, a_zp, B, b_scale, b_zp[, C, y_scale, y_zp]
                case "QGemm" -> n.getInputCount() < 6 ? null : new Found(n, LayerKind.GEMM, Style.QOPERATOR,
                        n.getInput(3), n.getInput(4), n.getInput(5), LayerKind.GEMM.weightAxis(n), null);
                // A, B, a_scale, b_scale[, a_zp, b_zp, bias]
                case "MatMulIntegerToFloat" -> n.getInputCount() < 4 ? null : new Found(n, LayerKind.MATMUL,
                        Style.QOPERATOR, n.getInput(1), n.getInput(3), input(n, 5), 1, null);
                // A, B, b_scale[, b_zp, bias]
                case "DynamicQuantizeMatMul" -> n.getInputCount() < 3 ? null : new Found(n, LayerKind.MATMUL,
                        Style.DYNAMIC, n.getInput(1), n.getInput(2), input(n, 3), 1, null);
                default -> null;
            };
        }
        if (!Model.isDefaultDomain(n.getDomain()) || n.getInputCount() < 2) {
            return null;
        }
        return switch (op) {
            // x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]
            case "QLinearConv", "QLinearMatMul" -> {
                LayerKind kind = op.equals("QLinearConv") ? LayerKind.CONV : LayerKind.MATMUL;
                yield n.getInputCount() < 8 ? null : new Found(n, kind, Style.QOPERATOR, n.getInput(3), n.getInput(4),
                        n.getInput(5), kind.weightAxis(n), null);
            }
            // A, B[, a_zp, b_zp]
            case "MatMulInteger", "ConvInteger" -> {
                LayerKind kind = op.equals("ConvInteger") ? LayerKind.CONV : LayerKind.MATMUL;
                yield new Found(n, kind, Style.DYNAMIC, n.getInput(1), null, input(n, 3), kind.weightAxis(n), null);
            }
            case "Conv", "MatMul", "Gemm" -> {
                NodeProto xdq = g.producer(n.getInput(0));
                NodeProto wdq = g.producer(n.getInput(1));
                if (!isDq(xdq) || !isDq(wdq)) {
                    yield null;
                }
                long axis = Nodes.intAttr(wdq, "axis", 1);
                yield new Found(n, LayerKind.of(op), Style.QDQ, wdq.getInput(0), input(wdq, 1), input(wdq, 2),
                        (int) axis, wdq);
            }
            default -> null;
        };
    }

    /** Input {@code i} of {@code n}, or null where it has fewer or that one is empty. */
    private static String input(NodeProto n, int i) {
        return n.getInputCount() > i && !n.getInput(i).isEmpty() ? n.getInput(i) : null;
    }

    static boolean isDq(NodeProto n) {
        return n != null && n.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(n.getDomain());
    }
}
