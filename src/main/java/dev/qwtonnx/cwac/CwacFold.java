package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantMath;
import java.util.List;
import java.util.Map;

/**
 * Folds fitted per-channel maps into a layer's existing parameters, adding no node:
 * w_scale[c] *= a_c (integer weights unchanged); the bias becomes a_c·bias + b_c, re-quantized to
 * int32 at exactly x_scale · w_scale'[c] (float32, as ORT's fusion checks it); after a MatMul, the
 * float constant of its bias Add becomes a_c·c + b_c, or, where that Add reads an int32 bias
 * through a DequantizeLinear (ORT's Gemm fusion, which takes the int32 values without checking
 * their scale), the int32 bias and its scale are refolded as a Conv's. A constant read by anything else is copied
 * before it is changed.
 */
public final class CwacFold implements Pass {
    public static final String NAME = "cwac-fold";

    private final List<QdqLayer> layers;
    private final Map<String, ChannelFit> fits;

    public CwacFold(List<QdqLayer> layers, Map<String, ChannelFit> fits) {
        this.layers = List.copyOf(layers);
        this.fits = Map.copyOf(fits);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean changed = false;
        for (QdqLayer l : layers) {
            ChannelFit fit = fits.get(l.name());
            if (fit == null || fit.isIdentity()) {
                continue;
            }
            fold(g, l, fit);
            changed = true;
        }
        return changed ? PassResult.changed(model.withGraph(g.build())) : PassResult.unchanged(model);
    }

    private static void fold(GraphEditor g, QdqLayer l, ChannelFit fit) {
        float[] wScale = Tensors.floats(g.initializer(l.weightScale()));
        float[] newScale = new float[wScale.length];
        for (int c = 0; c < wScale.length; c++) {
            newScale[c] = (float) (wScale[c] * fit.a()[c]);
        }
        String wScaleName = ownedCopy(g, l.weightScale(), l.name());
        g.putInitializer(Tensors.floatTensor(wScaleName, Tensors.dims(g.initializer(wScaleName)), newScale));

        if (l.biasQuantized() != null) {
            // A QLinearConv's bias has no scale of its own: it is x_scale·w_scale by definition.
            float[] oldBiasScale = l.biasScale() != null ? Tensors.floats(g.initializer(l.biasScale()))
                    : QuantMath.biasScales(l.inputScale(), wScale);
            long[] oldBias = Tensors.longs(g.initializer(l.biasQuantized()));
            float[] newBias = new float[oldBias.length];
            for (int c = 0; c < newBias.length; c++) {
                newBias[c] = (float) (fit.a()[c] * (oldBias[c] * (double) oldBiasScale[c]) + fit.b()[c]);
            }
            float[] newBiasScale = QuantMath.biasScales(l.inputScale(), newScale);
            // A MatMul's int32 bias is read by its bias Add (through a DequantizeLinear), a Conv's by the Conv.
            String biasUser = l.kind() == LayerKind.MATMUL && l.biasAdd() != null ? l.biasAdd() : l.name();
            String qName = ownedCopy(g, l.biasQuantized(), biasUser);
            long[] dims = Tensors.dims(g.initializer(qName));
            g.putInitializer(Tensors.int32Tensor(qName, dims, QuantMath.quantizeBias(newBias, newBiasScale)));
            if (l.biasScale() != null) {
                String sName = ownedCopy(g, l.biasScale(), biasUser);
                g.putInitializer(Tensors.floatTensor(sName, Tensors.dims(g.initializer(sName)), newBiasScale));
            }
        }
        if (l.biasAddConst() != null) {
            TensorProto c = g.initializer(l.biasAddConst());
            float[] v = Tensors.floats(c);
            float[] nv = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                nv[i] = (float) (fit.a()[i] * v[i] + fit.b()[i]);
            }
            String name = ownedCopy(g, l.biasAddConst(), l.biasAdd());
            g.putInitializer(Tensors.floatTensor(name, Tensors.dims(c), nv));
        }
    }

    /**
     * The name of an initializer only {@code user} reads: the same one where that holds, otherwise
     * a fresh copy that {@code user}'s inputs are switched to (a shared constant is never changed
     * for two readers).
     */
    private static String ownedCopy(GraphEditor g, String init, String userName) {
        NodeProto user = null;
        for (NodeProto n : g.nodes()) {
            if (n.getName().equals(userName)) {
                user = n;
            }
        }
        List<NodeProto> readers = g.consumers(init);
        // The layer reads its scales and bias through DequantizeLinear nodes: find the reader on the layer's path.
        NodeProto reader = null;
        for (NodeProto r : readers) {
            if (r == user || (user != null && user.getInputList().containsAll(r.getOutputList()))) {
                reader = r;
            }
        }
        if (g.useCount(init) <= 1 || reader == null) {
            return init;
        }
        String copy = g.names().fresh(init + "_" + userName);
        g.putInitializer(g.initializer(init).toBuilder().setName(copy).build());
        NodeProto.Builder b = reader.toBuilder();
        for (int i = 0; i < b.getInputCount(); i++) {
            if (b.getInput(i).equals(init)) {
                b.setInput(i, copy);
            }
        }
        g.replace(reader, b.build());
        return copy;
    }
}
