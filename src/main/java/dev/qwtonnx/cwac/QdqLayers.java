package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.LayerMatcher;
import java.util.ArrayList;
import java.util.List;

/**
 * The quantized layers compensation can fold into, among those {@link LayerFinder} finds (so that
 * compensation works on any QDQ or QOperator model, not only on ours): a constant int8 weight
 * quantized per output channel (or, in QDQ form, per tensor: shifts only), a constant activation
 * scale, and the edges of its bias (int32, or a float bias the node reads itself); the others are
 * listed with the reason.
 */
public final class QdqLayers {
    private QdqLayers() {
    }

    public record Result(List<QdqLayer> layers, List<String> skipped) {
    }

    public static Result find(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        List<QdqLayer> layers = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        for (LayerFinder.Found f : LayerFinder.find(g)) {
            NodeProto n = f.node();
            QdqLayer l = switch (f.style()) {
                case DYNAMIC -> {
                    skipped.add(Nodes.describe(n) + ": compensate does not fold into " + n.getOpType() + " yet");
                    yield null;
                }
                case QOPERATOR -> switch (n.getOpType()) {
                    case "QGemm" -> qgemm(g, f, skipped);
                    case "MatMulIntegerToFloat" -> matMulIntegerToFloat(g, f, skipped);
                    default -> qlinear(g, f, skipped);
                };
                case QDQ -> qdq(g, f, skipped);
            };
            if (l != null) {
                layers.add(l.withFrom(Nodes.metadata(n, Nodes.FROM)));
            }
        }
        return new Result(layers, skipped);
    }

    /** A float Conv / MatMul / Gemm between DequantizeLinears, with its int32 bias or its bias Add. */
    private static QdqLayer qdq(GraphEditor g, LayerFinder.Found f, List<String> skipped) {
        NodeProto n = f.node();
        LayerKind kind = f.kind();
        NodeProto xdq = g.producer(n.getInput(0));
        TensorProto xs = g.initializer(xdq.getInput(1));
        TensorProto wq = g.initializer(f.weight());
        TensorProto ws = f.weightScale() == null ? null : g.initializer(f.weightScale());
        if (xs == null || Tensors.floats(xs).length != 1 || wq == null || ws == null) {
            skipped.add(Nodes.describe(n) + ": activation scale or weight is not constant");
            return null;
        }
        long[] wdims = Tensors.dims(wq);
        int scales = Tensors.floats(ws).length;
        // A per-tensor weight (a target without per-channel kernels for this kind): its channels
        // are those of the node's own weight axis, and the fold shifts them without scaling.
        boolean perTensor = scales == 1 && ws.getDimsCount() == 0;
        int wAxis = perTensor ? kind.weightAxis(n) : f.weightAxis() < 0 ? f.weightAxis() + wdims.length : f.weightAxis();
        int channels = (int) wdims[wAxis];
        if ((!perTensor && scales != channels) || wAxis != kind.weightAxis(n)) {
            skipped.add(Nodes.describe(n) + ": weight is not quantized per output channel or per tensor");
            return null;
        }
        String biasQ = null;
        String biasS = null;
        String add = null;
        String addConst = null;
        TensorProto floatBias = kind != LayerKind.MATMUL && n.getInputCount() > 2 && !n.getInput(2).isEmpty()
                ? g.initializer(n.getInput(2)) : null;
        if (floatBias != null && floatBias.getDataType() == TensorProto.DataType.FLOAT_VALUE
                && Tensors.floats(floatBias).length == channels) {
            // A float bias the node adds itself (a target that takes float biases): the shift goes there.
            add = n.getName();
            addConst = n.getInput(2);
        } else if (kind != LayerKind.MATMUL && n.getInputCount() > 2 && !n.getInput(2).isEmpty()) {
            NodeProto bdq = g.producer(n.getInput(2));
            if (!isDq(bdq) || g.initializer(bdq.getInput(0)) == null
                    || g.initializer(bdq.getInput(0)).getDataType() != TensorProto.DataType.INT32_VALUE) {
                skipped.add(Nodes.describe(n) + ": bias is not an int32 DequantizeLinear of a constant");
                return null;
            }
            biasQ = bdq.getInput(0);
            biasS = bdq.getInput(1);
        }
        String output = n.getOutput(0);
        if (kind == LayerKind.MATMUL && !g.isGraphOutput(output)) {
            // The bias Add reads the MatMul directly (ours), or through a re-quantizing Q → DQ pair (ORT's
            // quantize_static): either way the Add's constant is the layer's bias to fold the shift into.
            String addInput = requantized(g, output);
            LayerMatcher.BiasAdd a = LayerMatcher.biasAdd(g, addInput, channels);
            LayerMatcher.Int32BiasAdd int32Add = a == null && addInput.equals(output)
                    ? LayerMatcher.int32BiasAdd(g, output, channels) : null;
            if (a != null) {
                add = a.add().getName();
                addConst = a.constant();
                output = a.add().getOutput(0);
            } else if (int32Add != null) {
                // Our form where ORT would make a Gemm of MatMul + Add (see Int32MatMulBias): an int32 bias
                // at x_scale·w_scale[c], folded as a Conv's.
                add = int32Add.add().getName();
                biasQ = int32Add.dq().getInput(0);
                biasS = int32Add.dq().getInput(1);
                output = int32Add.add().getOutput(0);
            }
        }
        QdqLayer l = new QdqLayer(kind, n.getName(), n.getInput(0), Tensors.floats(xs)[0], f.weightScale(), biasQ, biasS,
                add, addConst, output, channels);
        return perTensor ? l.withPerTensorWeight() : l;
    }

    /**
     * A QLinearConv (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]) or QLinearMatMul (a,
     * a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) of a constant weight quantized per output
     * channel; a QLinearMatMul's output read by a DequantizeLinear → Add of a constant has that Add
     * as its bias (ORT's QOperator form of MatMul + bias).
     */
    private static QdqLayer qlinear(GraphEditor g, LayerFinder.Found f, List<String> skipped) {
        NodeProto n = f.node();
        boolean conv = f.kind() == LayerKind.CONV;
        LayerKind kind = f.kind();
        TensorProto xs = g.initializer(n.getInput(1));
        TensorProto wq = g.initializer(f.weight());
        TensorProto ws = g.initializer(f.weightScale());
        if (xs == null || Tensors.floats(xs).length != 1 || wq == null || ws == null
                || g.initializer(n.getInput(6)) == null) {
            skipped.add(Nodes.describe(n) + ": activation scale, weight or output scale is not constant");
            return null;
        }
        long[] wdims = Tensors.dims(wq);
        if (!conv && wdims.length != 2) {
            skipped.add(Nodes.describe(n) + ": weight is not quantized per output channel");
            return null;
        }
        int channels = (int) wdims[f.weightAxis()];
        if (Tensors.floats(ws).length != channels) {
            skipped.add(Nodes.describe(n) + ": weight is not quantized per output channel");
            return null;
        }
        String biasQ = null;
        if (conv && n.getInputCount() > 8 && !n.getInput(8).isEmpty()) {
            TensorProto b = g.initializer(n.getInput(8));
            if (b == null || b.getDataType() != TensorProto.DataType.INT32_VALUE) {
                skipped.add(Nodes.describe(n) + ": bias is not a constant int32 tensor");
                return null;
            }
            biasQ = n.getInput(8);
        }
        QdqLayer.QLinear q = new QdqLayer.QLinear(n.getInput(1), n.getInput(2), n.getInput(6), n.getInput(7));
        String output = n.getOutput(0);
        String add = null;
        String addConst = null;
        List<NodeProto> readers = g.isGraphOutput(output) ? List.of() : g.consumers(output);
        if (!conv && readers.size() == 1 && isDq(readers.get(0))) {
            String deq = readers.get(0).getOutput(0);
            LayerMatcher.BiasAdd a = LayerMatcher.biasAdd(g, deq, channels);
            if (a != null) {
                add = a.add().getName();
                addConst = a.constant();
                output = a.add().getOutput(0);
            }
        }
        return new QdqLayer(kind, n.getName(), n.getInput(0), Tensors.floats(xs)[0], f.weightScale(), biasQ, null, add,
                addConst, output, channels, q);
    }

    /**
     * A com.microsoft MatMulIntegerToFloat (A, B, a_scale, b_scale[, a_zp, b_zp, bias]) of a
     * constant 2-D weight with per-column b_scale: the gain goes into b_scale, the shift into its
     * float bias input, or without one into the constant of an Add that alone reads its output
     * (without either, gain only).
     */
    private static QdqLayer matMulIntegerToFloat(GraphEditor g, LayerFinder.Found f, List<String> skipped) {
        NodeProto n = f.node();
        TensorProto xs = g.initializer(n.getInput(2));
        TensorProto wq = g.initializer(f.weight());
        TensorProto ws = g.initializer(f.weightScale());
        if (xs == null || Tensors.floats(xs).length != 1 || wq == null || ws == null) {
            skipped.add(Nodes.describe(n) + ": activation scale or weight is not constant");
            return null;
        }
        long[] wdims = Tensors.dims(wq);
        int channels = (int) wdims[wdims.length - 1];
        if (wdims.length != 2 || Tensors.floats(ws).length != channels) {
            skipped.add(Nodes.describe(n) + ": weight is not quantized per output channel");
            return null;
        }
        String xz = n.getInputCount() > 4 ? n.getInput(4) : "";
        QdqLayer.QLinear q = new QdqLayer.QLinear(n.getInput(2), xz, null, null);
        String output = n.getOutput(0);
        String add = null;
        String addConst = null;
        if (n.getInputCount() > 6 && !n.getInput(6).isEmpty()) {
            TensorProto bias = g.initializer(n.getInput(6));
            if (bias == null || bias.getDataType() != TensorProto.DataType.FLOAT_VALUE
                    || Tensors.floats(bias).length != channels) {
                skipped.add(Nodes.describe(n) + ": bias is not a constant float tensor of one value per column");
                return null;
            }
            add = n.getName(); // the node adds its bias itself: the fold rewrites its own input
            addConst = n.getInput(6);
        } else if (!g.isGraphOutput(output)) {
            LayerMatcher.BiasAdd a = LayerMatcher.biasAdd(g, output, channels);
            if (a != null) {
                add = a.add().getName();
                addConst = a.constant();
                output = a.add().getOutput(0);
            }
        }
        return new QdqLayer(LayerKind.MATMUL, n.getName(), n.getInput(0), Tensors.floats(xs)[0], f.weightScale(), null,
                null, add, addConst, output, channels, q);
    }

    /**
     * A com.microsoft QGemm (A, a_scale, a_zp, B, b_scale, b_zp[, C, y_scale, y_zp]) of a constant
     * weight with per-output-column b_scale and alpha 1: the gain goes into b_scale, the shift into
     * the int32 C (scale a_scale·b_scale); the output is quantized with y_scale, or float without it.
     */
    private static QdqLayer qgemm(GraphEditor g, LayerFinder.Found f, List<String> skipped) {
        NodeProto n = f.node();
        TensorProto xs = g.initializer(n.getInput(1));
        TensorProto wq = g.initializer(f.weight());
        TensorProto ws = g.initializer(f.weightScale());
        boolean quantizedOut = n.getInputCount() > 7 && !n.getInput(7).isEmpty();
        if (xs == null || Tensors.floats(xs).length != 1 || wq == null || ws == null
                || (quantizedOut && g.initializer(n.getInput(7)) == null)) {
            skipped.add(Nodes.describe(n) + ": activation scale, weight or output scale is not constant");
            return null;
        }
        if (Nodes.floatAttr(n, "alpha", 1f) != 1f) {
            skipped.add(Nodes.describe(n) + ": alpha is not 1 (C's scale would be alpha·a_scale·b_scale)");
            return null;
        }
        long[] wdims = Tensors.dims(wq);
        int channels = wdims.length == 2 ? (int) wdims[f.weightAxis()] : -1;
        if (wdims.length != 2 || Tensors.floats(ws).length != channels) {
            skipped.add(Nodes.describe(n) + ": weight is not quantized per output channel");
            return null;
        }
        String biasQ = null;
        if (n.getInputCount() > 6 && !n.getInput(6).isEmpty()) {
            TensorProto b = g.initializer(n.getInput(6));
            if (b == null || b.getDataType() != TensorProto.DataType.INT32_VALUE || Tensors.longs(b).length != channels) {
                skipped.add(Nodes.describe(n) + ": C is not a constant int32 tensor of one value per column");
                return null;
            }
            biasQ = n.getInput(6);
        }
        QdqLayer.QLinear q = new QdqLayer.QLinear(n.getInput(1), n.getInput(2), quantizedOut ? n.getInput(7) : null,
                quantizedOut && n.getInputCount() > 8 ? n.getInput(8) : null);
        return new QdqLayer(LayerKind.GEMM, n.getName(), n.getInput(0), Tensors.floats(xs)[0], f.weightScale(), biasQ,
                null, null, null, n.getOutput(0), channels, q);
    }

    /**
     * The DequantizeLinear output of a QuantizeLinear → DequantizeLinear pair that alone reads
     * {@code tensor}, each read by nothing else; otherwise {@code tensor} itself.
     */
    private static String requantized(GraphEditor g, String tensor) {
        List<NodeProto> readers = g.consumers(tensor);
        if (readers.size() != 1 || !readers.get(0).getOpType().equals("QuantizeLinear")
                || !Model.isDefaultDomain(readers.get(0).getDomain())) {
            return tensor;
        }
        String q = readers.get(0).getOutput(0);
        if (g.isGraphOutput(q) || g.consumers(q).size() != 1 || !isDq(g.consumers(q).get(0))) {
            return tensor;
        }
        return g.consumers(q).get(0).getOutput(0);
    }

    private static boolean isDq(NodeProto n) {
        return LayerFinder.isDq(n);
    }
}
