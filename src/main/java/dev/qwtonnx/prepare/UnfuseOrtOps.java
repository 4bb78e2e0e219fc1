package dev.qwtonnx.prepare;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.NodeRewrite;
import java.util.List;
import java.util.Set;

/**
 * ORT's FusedConv and FusedMatMul (com.microsoft) with a constant weight back into the standard layers they were
 * fused from, so that they are quantized like the rest: a graph ORT saved after its own optimizations (its
 * extended level) holds them, where a Conv and its activation or a MatMul with a transposed or scaled weight
 * were. FusedConv(X, W, B) with activation A becomes Conv(X, W, B) then A; FusedMatMul(A, W) with alpha and transB
 * becomes MatMul(A, W'), W' the weight transposed and scaled. ORT fuses them again when it loads the quantized
 * model, as it fuses a QLinearConv with its activation. Left as they are: a FusedConv adding a fourth input, an
 * activation this pass does not know, a FusedMatMul that transposes its input or a batch.
 */
public final class UnfuseOrtOps implements NodeRewrite {
    public static final String NAME = "unfuse-ort-ops";
    /** FusedConv's activations and the attributes their parameters become. */
    static final Set<String> ACTIVATIONS = Set.of("Relu", "Tanh", "Sigmoid", "LeakyRelu", "Clip", "HardSigmoid");

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean matches(NodeProto n) {
        return Model.MICROSOFT_DOMAIN.equals(n.getDomain()) && (n.getOpType().equals("FusedConv") || n.getOpType().equals("FusedMatMul"));
    }

    @Override
    public String rejection(GraphEditor g, NodeProto n) {
        return n.getOpType().equals("FusedConv") ? convRejection(g, n) : matMulRejection(g, n);
    }

    @Override
    public void rewrite(GraphEditor g, NodeProto n) {
        if (n.getOpType().equals("FusedConv")) {
            unfuseConv(g, n);
        } else {
            unfuseMatMul(g, n);
        }
    }

    private static TensorProto constantFloat(GraphEditor g, String name) {
        TensorProto t = g.constant(name);
        return t != null && t.getDataType() == TensorProto.DataType.FLOAT_VALUE ? t : null;
    }

    private static String convRejection(GraphEditor g, NodeProto n) {
        if (n.getInputCount() > 3 && !n.getInput(3).isEmpty()) {
            return "it adds a fourth input (Z) to the convolution";
        }
        if (n.getInputCount() < 2 || constantFloat(g, n.getInput(1)) == null) {
            return "its weight is not a constant float tensor";
        }
        String activation = Nodes.stringAttr(n, "activation", "");
        if (!activation.isEmpty() && !ACTIVATIONS.contains(activation)) {
            return "its activation " + activation + " is not one this pass writes as a node";
        }
        List<Float> params = params(n);
        int needed = switch (activation) {
            case "LeakyRelu" -> 1;
            case "Clip", "HardSigmoid" -> 2;
            default -> 0;
        };
        return params.size() < needed ? "its activation " + activation + " has " + params.size() + " parameters" : null;
    }

    private static List<Float> params(NodeProto n) {
        return Nodes.attr(n, "activation_params").map(AttributeProto::getFloatsList).orElse(List.of());
    }

    private static void unfuseConv(GraphEditor g, NodeProto n) {
        String activation = Nodes.stringAttr(n, "activation", "");
        NodeProto.Builder conv = n.toBuilder().setDomain("").clearAttribute().setOpType("Conv");
        for (AttributeProto a : n.getAttributeList()) {
            if (!a.getName().equals("activation") && !a.getName().equals("activation_params")) {
                conv.addAttribute(a);
            }
        }
        if (conv.getInputCount() > 3) {
            List<String> xwb = List.copyOf(n.getInputList().subList(0, 3)); // without an empty Z
            conv.clearInput().addAllInput(xwb);
        }
        if (activation.isEmpty()) {
            g.replace(n, conv.build());
            return;
        }
        String y = n.getOutput(0);
        String convOut = g.names().fresh(y + "_conv");
        conv.setOutput(0, convOut);
        List<Float> p = params(n);
        String name = g.names().fresh((n.getName().isEmpty() ? "FusedConv" : n.getName()) + "_" + activation);
        NodeProto act = switch (activation) {
            case "LeakyRelu" -> Nodes.node(activation, name, List.of(convOut), List.of(y), NAME,
                    Nodes.floatAttribute("alpha", p.get(0)));
            case "HardSigmoid" -> Nodes.node(activation, name, List.of(convOut), List.of(y), NAME,
                    Nodes.floatAttribute("alpha", p.get(0)), Nodes.floatAttribute("beta", p.get(1)));
            case "Clip" -> {
                String lo = g.names().fresh(name + "_min");
                String hi = g.names().fresh(name + "_max");
                g.putInitializer(Tensors.floatTensor(lo, new long[0], new float[] {p.get(0)}));
                g.putInitializer(Tensors.floatTensor(hi, new long[0], new float[] {p.get(1)}));
                yield Nodes.node(activation, name, List.of(convOut, lo, hi), List.of(y), NAME);
            }
            default -> Nodes.node(activation, name, List.of(convOut), List.of(y), NAME);
        };
        NodeProto written = g.replace(n, conv.build());
        g.insertAfter(written, act);
    }

    private static String matMulRejection(GraphEditor g, NodeProto n) {
        if (n.getInputCount() != 2) {
            return "it does not have 2 inputs";
        }
        TensorProto w = constantFloat(g, n.getInput(1));
        if (w == null || w.getDimsCount() != 2) {
            return "its weight is not a constant 2-D float tensor";
        }
        if (Nodes.intAttr(n, "transA", 0) != 0 || Nodes.intAttr(n, "transBatchA", 0) != 0
                || Nodes.intAttr(n, "transBatchB", 0) != 0) {
            return "it transposes its input or a batch";
        }
        return null;
    }

    private static void unfuseMatMul(GraphEditor g, NodeProto n) {
        TensorProto w = g.initializer(n.getInput(1));
        long[] dims = Tensors.dims(w);
        float[] v = Tensors.floats(w);
        float alpha = Nodes.floatAttr(n, "alpha", 1f);
        boolean transB = Nodes.intAttr(n, "transB", 0) != 0;
        int rows = (int) dims[0];
        int cols = (int) dims[1];
        float[] out = new float[v.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                // transB: the weight is [N, K]; MatMul reads [K, N]
                out[transB ? c * rows + r : r * cols + c] = v[r * cols + c] * alpha;
            }
        }
        long[] newDims = transB ? new long[] {cols, rows} : dims;
        // A fresh name: the original may be read by other nodes and must keep its value.
        String name = g.names().fresh(n.getInput(1) + "_unfused");
        g.putInitializer(Tensors.floatTensor(name, newDims, out));
        g.replace(n, n.toBuilder().setDomain("").setOpType("MatMul").clearAttribute().setInput(1, name).build());
        g.removeInitializerIfUnused(n.getInput(1));
    }
}
