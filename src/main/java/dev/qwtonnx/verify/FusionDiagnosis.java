package dev.qwtonnx.verify;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.List;

/**
 * Why ORT left a quantized layer in float: the preconditions of ORT's QDQ fusions (its QDQ node-group
 * selectors), checked on the layer as the model states it. The first failed precondition is the
 * likely reason; a layer passing every check gets "not fused for a reason not checked here".
 */
public final class FusionDiagnosis {
    /** Relative difference beyond which a bias scale is not input scale × weight scale. */
    static final double BIAS_SCALE_TOLERANCE = 1e-4;

    private FusionDiagnosis() {
    }

    /** The likely reason the named node (a float Conv/MatMul/Gemm of the quantized model) was not fused. */
    public static String reason(Model quantModel, String nodeName) {
        GraphEditor g = new GraphEditor(quantModel.graph());
        NodeProto n = null;
        for (NodeProto c : g.nodes()) {
            if (c.getName().equals(nodeName)) {
                n = c;
                break;
            }
        }
        if (n == null) {
            return "not fused; the node is not in the model as saved (ORT created it while optimizing)";
        }
        NodeProto xdq = g.producer(n.getInput(0));
        NodeProto wdq = n.getInputCount() > 1 ? g.producer(n.getInput(1)) : null;
        if (!QuantizedLayers.isOp(xdq, "DequantizeLinear")) {
            return "missing input DequantizeLinear: the activation is float";
        }
        if (!QuantizedLayers.isOp(wdq, "DequantizeLinear")) {
            return "missing weight DequantizeLinear: the weight is float";
        }
        if (!g.isInitializer(wdq.getInput(0))) {
            return "weight is not a constant initializer";
        }
        int xType = elemType(g, xdq.getInput(0));
        int wType = g.initializer(wdq.getInput(0)).getDataType();
        if (xType != 0 && xType != TensorProto.DataType.UINT8_VALUE && xType != TensorProto.DataType.INT8_VALUE) {
            return "unsupported type: activation quantized to " + typeName(xType) + " (integer kernels take int8/uint8)";
        }
        if (wType != TensorProto.DataType.UINT8_VALUE && wType != TensorProto.DataType.INT8_VALUE) {
            return "unsupported type: weight quantized to " + typeName(wType) + " (integer kernels take int8/uint8)";
        }
        float[] xScale = constant(g, xdq.getInput(1));
        float[] wScale = constant(g, wdq.getInput(1));
        if (xScale != null && xScale.length != 1) {
            return "activation quantized per channel (integer kernels need a per-tensor activation scale)";
        }
        boolean hasBias = !n.getOpType().equals("MatMul") && n.getInputCount() > 2 && !n.getInput(2).isEmpty();
        if (hasBias) {
            NodeProto bdq = g.producer(n.getInput(2));
            if (!QuantizedLayers.isOp(bdq, "DequantizeLinear")) {
                return "bias is float (no int32 DequantizeLinear)";
            }
            TensorProto bq = g.initializer(bdq.getInput(0));
            if (bq == null || bq.getDataType() != TensorProto.DataType.INT32_VALUE) {
                return "unsupported type: bias is not a constant int32";
            }
            float[] bScale = constant(g, bdq.getInput(1));
            if (xScale != null && wScale != null && bScale != null) {
                double worst = 0;
                for (int c = 0; c < bScale.length; c++) {
                    double expected = (double) xScale[0] * wScale[wScale.length == 1 ? 0 : Math.min(c, wScale.length - 1)];
                    worst = Math.max(worst, Math.abs(bScale[c] - expected) / Math.abs(expected));
                }
                if (worst > BIAS_SCALE_TOLERANCE) {
                    return String.format("bias scale mismatch: bias scale differs from input scale × weight scale by "
                            + "up to %.2f%%", 100 * worst);
                }
            }
        }
        if (n.getOpType().equals("Conv")) {
            List<NodeProto> readers = g.consumers(n.getOutput(0));
            if (g.isGraphOutput(n.getOutput(0)) || readers.size() != 1
                    || !QuantizedLayers.isOp(readers.get(0), "QuantizeLinear")) {
                return "missing output QuantizeLinear (QLinearConv needs DequantizeLinear → Conv → QuantizeLinear)";
            }
        }
        return "not fused for a reason not checked here (see ORT's QDQ selectors)";
    }

    private static float[] constant(GraphEditor g, String name) {
        TensorProto t = name == null ? null : g.initializer(name);
        return t == null ? null : Tensors.floats(t);
    }

    private static int elemType(GraphEditor g, String tensor) {
        TensorProto t = g.initializer(tensor);
        if (t != null) {
            return t.getDataType();
        }
        NodeProto p = g.producer(tensor);
        if (QuantizedLayers.isOp(p, "QuantizeLinear") && p.getInputCount() > 2) {
            TensorProto zp = g.initializer(p.getInput(2));
            return zp == null ? 0 : zp.getDataType();
        }
        return 0;
    }

    private static String typeName(int type) {
        TensorProto.DataType t = TensorProto.DataType.forNumber(type);
        return t == null ? "type " + type : t.name().toLowerCase();
    }
}
