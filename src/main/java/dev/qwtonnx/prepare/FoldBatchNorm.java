package dev.qwtonnx.prepare;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.NodeRewrite;
import java.util.List;

/**
 * Folds an inference-mode BatchNormalization that follows a Conv into the Conv's weight and bias:
 * W' = W·γ/√(σ²+ε) per output channel, b' = (b − μ)·γ/√(σ²+ε) + β. The BatchNormalization node goes,
 * and the Conv writes its output. A weight or bias shared with another node is copied, never
 * changed for both.
 */
public final class FoldBatchNorm implements NodeRewrite {
    public static final String NAME = "fold-batchnorm";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean matches(NodeProto n) {
        return n.getOpType().equals("BatchNormalization") && Model.isDefaultDomain(n.getDomain());
    }

    @Override
    public void rewrite(GraphEditor g, NodeProto bn) {
        fold(g, g.producer(bn.getInput(0)), bn);
    }

    /** Null when the BatchNormalization can be folded into the Conv before it, else the reason why not. */
    @Override
    public String rejection(GraphEditor g, NodeProto bn) {
        if (bn.getInputCount() != 5) {
            return "it does not have 5 inputs";
        }
        if (Nodes.intAttr(bn, "training_mode", 0) != 0
                || bn.getOutputList().subList(1, bn.getOutputCount()).stream().anyMatch(o -> !o.isEmpty())) {
            return "it is in training form (running statistics are outputs)";
        }
        NodeProto conv = g.producer(bn.getInput(0));
        if (conv == null || !conv.getOpType().equals("Conv") || !Model.isDefaultDomain(conv.getDomain())) {
            return "its input is not the output of a Conv";
        }
        String y = conv.getOutput(0);
        if (g.useCount(y) != 1) {
            return "the Conv output '" + y + "' is also read elsewhere";
        }
        TensorProto w = g.constant(conv.getInput(1));
        if (w == null || w.getDataType() != TensorProto.DataType.FLOAT_VALUE || w.getDimsCount() < 1) {
            return "the Conv weight is not a constant float tensor";
        }
        long m = w.getDims(0);
        if (conv.getInputCount() > 2 && !conv.getInput(2).isEmpty()) {
            TensorProto b = g.constant(conv.getInput(2));
            if (b == null || b.getDataType() != TensorProto.DataType.FLOAT_VALUE || Tensors.floats(b).length != m) {
                return "the Conv bias is not a constant float tensor of " + m + " values";
            }
        }
        for (int i = 1; i < 5; i++) {
            TensorProto p = g.constant(bn.getInput(i));
            if (p == null || p.getDataType() != TensorProto.DataType.FLOAT_VALUE || Tensors.floats(p).length != m) {
                return "its input '" + bn.getInput(i) + "' is not a constant float tensor of " + m + " values";
            }
        }
        return null;
    }

    private static void fold(GraphEditor g, NodeProto conv, NodeProto bn) {
        TensorProto w = g.initializer(conv.getInput(1));
        long[] dims = Tensors.dims(w);
        float[] wv = Tensors.floats(w);
        int m = (int) dims[0];
        float[] gamma = Tensors.floats(g.initializer(bn.getInput(1)));
        float[] beta = Tensors.floats(g.initializer(bn.getInput(2)));
        float[] mean = Tensors.floats(g.initializer(bn.getInput(3)));
        float[] var = Tensors.floats(g.initializer(bn.getInput(4)));
        double eps = Nodes.floatAttr(bn, "epsilon", 1e-5f);
        boolean hasBias = conv.getInputCount() > 2 && !conv.getInput(2).isEmpty();
        float[] bias = hasBias ? Tensors.floats(g.initializer(conv.getInput(2))) : new float[m];
        int per = wv.length / m;
        float[] nw = new float[wv.length];
        float[] nb = new float[m];
        for (int c = 0; c < m; c++) {
            double k = gamma[c] / Math.sqrt(var[c] + eps);
            for (int i = 0; i < per; i++) {
                nw[c * per + i] = (float) (wv[c * per + i] * k);
            }
            nb[c] = (float) ((bias[c] - mean[c]) * k + beta[c]);
        }
        // Fresh names: the originals may be read by other nodes and must keep their values.
        String wName = g.names().fresh(conv.getInput(1) + "_bn_folded");
        String bName = g.names().fresh((hasBias ? conv.getInput(2) : conv.getName() + "_bias") + "_bn_folded");
        g.putInitializer(Tensors.floatTensor(wName, dims, nw));
        g.putInitializer(Tensors.floatTensor(bName, new long[] {m}, nb));
        String oldW = conv.getInput(1);
        String oldB = hasBias ? conv.getInput(2) : null;
        NodeProto.Builder nc = conv.toBuilder().setInput(1, wName).setOutput(0, bn.getOutput(0));
        if (hasBias) {
            nc.setInput(2, bName);
        } else {
            while (nc.getInputCount() < 2) {
                nc.addInput("");
            }
            nc.addInput(bName);
        }
        g.replace(conv, nc.build());
        g.remove(bn);
        for (String init : List.of(bn.getInput(1), bn.getInput(2), bn.getInput(3), bn.getInput(4), oldW)) {
            g.removeInitializerIfUnused(init);
        }
        g.removeInitializerIfUnused(oldB);
    }
}
