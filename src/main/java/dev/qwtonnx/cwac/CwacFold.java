package dev.qwtonnx.cwac;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantMath;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Folds fitted per-channel maps into a layer's existing parameters, adding no node:
 * w_scale[c] *= a_c (integer weights unchanged; a weight with one scale per tensor takes shifts
 * alone, a_c = 1); the bias becomes a_c·bias + b_c, re-quantized to
 * int32 at exactly x_scale · w_scale'[c] (float32, as ORT's fusion checks it); after a MatMul, the
 * float constant of its bias Add becomes a_c·c + b_c, or, where that Add reads an int32 bias
 * through a DequantizeLinear (ORT's Gemm fusion, which takes the int32 values without checking
 * their scale), the int32 bias and its scale are refolded as a Conv's.
 *
 * <p>Fails closed: each constant the fold changes is followed from the node that reads it for the
 * layer (the layer node, or its bias Add), directly or through one DequantizeLinear. A constant or
 * a DequantizeLinear that anything else also reads is copied for the layer first, so a shared
 * constant is never changed for two readers. A layer for which that path is not found is left as
 * it was and returned as a {@link NotFolded} with the reason.
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

    /** A layer whose fit was not folded, and why. */
    public record NotFolded(QdqLayer layer, String reason) {
        /** The same as the pass rejection {@link #run} returns. */
        public Rejection rejection() {
            return new Rejection(NAME, layer.kind().opType + " node '" + layer.name() + "'", "fit not folded: " + reason);
        }

        @Override
        public String toString() {
            return layer.kind().opType + " node '" + layer.name() + "': fit not folded: " + reason;
        }
    }

    /**
     * The folded model (its result carries the rejections), and the layers whose fits were not
     * folded (their part of the graph as it was).
     */
    public record Outcome(PassResult result, List<NotFolded> rejected) {
        public Model model() {
            return result.model();
        }
    }

    @Override
    public PassResult run(Model model) {
        return apply(model).result();
    }

    /** Folds each layer's fit, or rejects the layer with a reason (see the class comment). */
    public Outcome apply(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean changed = false;
        List<NotFolded> rejected = new ArrayList<>();
        for (QdqLayer l : layers) {
            ChannelFit fit = fits.get(l.name());
            if (fit == null || fit.isIdentity()) {
                continue;
            }
            String reason = unprovable(g, l);
            if (reason != null) {
                rejected.add(new NotFolded(l, reason));
                continue;
            }
            fold(g, l, fit);
            changed = true;
        }
        List<Rejection> reasons = rejected.stream().map(NotFolded::rejection).toList();
        PassResult r = changed ? PassResult.changed(model.withGraph(g.build()), reasons)
                : PassResult.unchanged(model, reasons);
        return new Outcome(r, List.copyOf(rejected));
    }

    /**
     * Where a layer reads one constant: {@code user} reads it at input {@code index}, directly
     * ({@code dq} null) or through the DequantizeLinear {@code dq}, which reads it at {@code dqIndex}.
     */
    private record Path(NodeProto user, int index, NodeProto dq, int dqIndex) {
    }

    /**
     * The layer's node: the one reader of its input that bears its name, where the layer's output
     * is that node's or its bias Add's.
     */
    private static NodeProto layerNode(GraphEditor g, QdqLayer l) {
        NodeProto found = null;
        for (NodeProto n : g.consumers(l.input())) {
            if (n.getName().equals(l.name())) {
                if (found != null) {
                    return null;
                }
                found = n;
            }
        }
        return found;
    }

    /** The node that adds the layer's bias after it: the producer of the layer's output, of that name. */
    private static NodeProto biasAddNode(GraphEditor g, QdqLayer l) {
        NodeProto add = g.producer(l.output());
        return add != null && add.getName().equals(l.biasAdd()) ? add : null;
    }

    /** The node reading the layer's int32 bias: a MatMul's bias Add, otherwise the layer node. */
    private static NodeProto biasUser(GraphEditor g, QdqLayer l) {
        return l.kind() == LayerKind.MATMUL && l.biasAdd() != null ? biasAddNode(g, l) : layerNode(g, l);
    }

    /**
     * How {@code user} reads {@code init}, at input {@code index} (-1: any): the one route, directly
     * or through a DequantizeLinear; null where there is none or more than one.
     */
    private static Path path(GraphEditor g, NodeProto user, String init, int index) {
        if (user == null) {
            return null;
        }
        List<Path> routes = new ArrayList<>();
        for (int i = 0; i < user.getInputCount(); i++) {
            if (index >= 0 && i != index) {
                continue;
            }
            if (user.getInput(i).equals(init)) {
                routes.add(new Path(user, i, null, -1));
            }
            NodeProto p = g.producer(user.getInput(i));
            if (p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain())) {
                for (int j = 0; j < p.getInputCount(); j++) {
                    if (p.getInput(j).equals(init)) {
                        routes.add(new Path(user, i, p, j));
                    }
                }
            }
        }
        return routes.size() == 1 ? routes.get(0) : null;
    }

    /** The weight scale's route: through the weight's DequantizeLinear (input 1) in QDQ form, read directly in QOperator form. */
    private static Path weightScalePath(GraphEditor g, QdqLayer l) {
        Path p = path(g, layerNode(g, l), l.weightScale(), l.qlinear() == null ? 1 : -1);
        return p == null || (p.dq() == null) == (l.qlinear() == null) ? null : p;
    }

    /** The int32 bias's (or its scale's) route: a QDQ Conv or Gemm reads it through input 2. */
    private static Path biasPath(GraphEditor g, QdqLayer l, String init) {
        boolean qdqLayerInput = l.qlinear() == null && !(l.kind() == LayerKind.MATMUL && l.biasAdd() != null);
        return path(g, biasUser(g, l), init, qdqLayerInput ? 2 : -1);
    }

    /** Why the fold cannot prove which node reads each constant it would change for {@code l}, or null. */
    private static String unprovable(GraphEditor g, QdqLayer l) {
        NodeProto node = layerNode(g, l);
        if (node == null) {
            return "no single node named '" + l.name() + "' reads the layer's input '" + l.input() + "'";
        }
        List<String> constants = new ArrayList<>();
        for (String c : new String[] {l.weightScale(), l.biasQuantized(), l.biasScale(), l.biasAddConst()}) {
            if (c != null) {
                if (constants.contains(c)) {
                    return "it names '" + c + "' for two of its constants";
                }
                constants.add(c);
            }
        }
        if (weightScalePath(g, l) == null) {
            return "its weight scale '" + l.weightScale() + "' is not read once, "
                    + (l.qlinear() == null ? "by the DequantizeLinear of its weight" : "by the layer node");
        }
        if (l.biasAdd() != null && biasAddNode(g, l) == null) {
            return "its bias Add '" + l.biasAdd() + "' does not produce the layer's output '" + l.output() + "'";
        }
        if (l.biasQuantized() != null) {
            NodeProto user = biasUser(g, l);
            if (user == null) {
                return "the node reading its int32 bias is not found";
            }
            Path q = biasPath(g, l, l.biasQuantized());
            if (q == null) {
                return "its int32 bias '" + l.biasQuantized() + "' is not read by " + Nodes.describe(user);
            }
            if (l.biasScale() != null) {
                Path s = biasPath(g, l, l.biasScale());
                if (s == null || s.dq() != q.dq()) {
                    return "its bias scale '" + l.biasScale() + "' is not read by its bias's DequantizeLinear";
                }
            }
        }
        if (l.biasAddConst() != null && path(g, biasAddNode(g, l), l.biasAddConst(), -1) == null) {
            return "its bias constant '" + l.biasAddConst() + "' is not read by its bias Add '" + l.biasAdd() + "'";
        }
        return null;
    }

    /** Folds a layer whose paths {@link #unprovable} found. */
    private static void fold(GraphEditor g, QdqLayer l, ChannelFit fit) {
        float[] wScale = Tensors.floats(g.initializer(l.weightScale()));
        float[] newScale = new float[l.perTensor() ? l.channels() : wScale.length];
        for (int c = 0; c < newScale.length; c++) {
            newScale[c] = l.perTensor() ? wScale[0] : (float) (wScale[c] * fit.a()[c]);
        }
        if (l.perTensor()) {
            // One scale for every channel: the fit is a shift alone (a = 1), and the weight scale stays.
            wScale = newScale;
        } else {
            String wScaleName = owned(g, weightScalePath(g, l), l.weightScale(), l.name());
            g.putInitializer(Tensors.floatTensor(wScaleName, Tensors.dims(g.initializer(wScaleName)), newScale));
        }

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
            String biasUser = l.kind() == LayerKind.MATMUL && l.biasAdd() != null ? l.biasAdd() : l.name();
            String qName = owned(g, biasPath(g, l, l.biasQuantized()), l.biasQuantized(), biasUser);
            long[] dims = Tensors.dims(g.initializer(qName));
            g.putInitializer(Tensors.int32Tensor(qName, dims, QuantMath.quantizeBias(newBias, newBiasScale)));
            if (l.biasScale() != null) {
                String sName = owned(g, biasPath(g, l, l.biasScale()), l.biasScale(), biasUser);
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
            String name = owned(g, path(g, biasAddNode(g, l), l.biasAddConst(), -1), l.biasAddConst(), l.biasAdd());
            g.putInitializer(Tensors.floatTensor(name, Tensors.dims(c), nv));
        }
    }

    /**
     * The name of an initializer that only the layer reads along {@code p}: {@code init} itself
     * where nothing else reads it, otherwise a fresh copy. A DequantizeLinear on the path whose
     * output something else reads is first copied too, for {@code p}'s user alone.
     */
    private static String owned(GraphEditor g, Path p, String init, String userName) {
        NodeProto dq = p.dq();
        if (dq != null && g.useCount(dq.getOutput(0)) > 1) {
            String out = g.names().fresh(dq.getOutput(0) + "_" + userName);
            NodeProto copy = dq.toBuilder().setName(g.names().fresh(dq.getName() + "_" + userName))
                    .setOutput(0, out).build();
            g.insertBefore(p.user(), copy);
            g.setInput(p.user(), p.index(), out);
            dq = copy;
        }
        if (g.useCount(init) <= 1) {
            return init;
        }
        String copy = g.names().fresh(init + "_" + userName);
        g.putInitializer(g.initializer(init).toBuilder().setName(copy).build());
        if (dq == null) {
            g.setInput(p.user(), p.index(), copy);
        } else {
            g.setInput(dq, p.dqIndex(), copy);
        }
        return copy;
    }
}
