package dev.qwtonnx.prepare;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Evaluates {@code Identity}, {@code Cast} (to float), {@code Reshape} and {@code Transpose} nodes
 * whose inputs are all initializers, and puts the result in an initializer of the node's output
 * name. Exporters often hand a layer its weight through such a chain (a Transpose of a Cast of a
 * Constant); folded, the layer reads a constant and can be quantized. Nodes are visited in graph
 * order, so a whole chain folds in one run. Expects opset 13 semantics (runs after the upgrade);
 * the inputs left unused are dropped later by {@link RemoveUnusedInitializers}.
 */
public final class FoldConstantChains implements Pass {
    @Override
    public String name() {
        return "fold-constant-chains";
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean changed = false;
        for (NodeProto n : g.nodesSnapshot()) {
            TensorProto folded = fold(n, g);
            if (folded == null) {
                continue;
            }
            g.remove(n);
            g.putInitializer(folded);
            changed = true;
        }
        return changed ? PassResult.changed(model.withGraph(g.build())) : PassResult.unchanged(model);
    }

    /** The node's output as a constant, or null when it is not one of the folded kinds or reads a non-constant. */
    private static TensorProto fold(NodeProto n, GraphEditor g) {
        if (!Model.isDefaultDomain(n.getDomain()) || n.getOutputCount() != 1 || n.getInputCount() == 0
                || g.isGraphOutput(n.getOutput(0)) || g.isGraphInput(n.getOutput(0))) {
            return null;
        }
        for (String in : n.getInputList()) {
            TensorProto t = in.isEmpty() ? null : g.initializer(in);
            if (t == null || Tensors.isExternal(t) || !DataType.isKnown(t.getDataType())) {
                return null;
            }
        }
        String out = n.getOutput(0);
        HostTensor x = Tensors.toHost(g.initializer(n.getInput(0)));
        HostTensor y = switch (n.getOpType()) {
            case "Identity" -> n.getInputCount() == 1 ? x : null;
            case "Cast" -> cast(x, Nodes.intAttr(n, "to", 0));
            case "Reshape" -> n.getInputCount() == 2
                    ? reshape(x, Tensors.longs(g.initializer(n.getInput(1))), Nodes.intAttr(n, "allowzero", 0) != 0)
                    : null;
            case "Transpose" -> n.getInputCount() == 1 ? transpose(x, Nodes.intsAttr(n, "perm")) : null;
            default -> null;
        };
        return y == null ? null : y.toProto(out);
    }

    /** Casts that yield float32, or keep the type; others (to integer, to float16) stay nodes. */
    private static HostTensor cast(HostTensor x, long to) {
        if (to == x.type().code) {
            return x;
        }
        if (to != DataType.FLOAT.code) {
            return null;
        }
        return HostTensor.ofFloats(x.shape(), x.toFloats());
    }

    /** ONNX Reshape: 0 copies the input's dimension (unless allowzero), one -1 takes what is left. */
    static HostTensor reshape(HostTensor x, long[] spec, boolean allowZero) {
        long[] in = x.shape();
        long[] out = new long[spec.length];
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < spec.length; i++) {
            long d = spec[i];
            if (d == 0 && !allowZero) {
                if (i >= in.length) {
                    return null;
                }
                d = in[i];
            }
            if (d == -1) {
                if (inferred >= 0) {
                    return null;
                }
                inferred = i;
                continue;
            }
            if (d < 0) {
                return null;
            }
            out[i] = d;
            known *= d;
        }
        long total = x.numel();
        if (inferred >= 0) {
            if (known == 0 || total % known != 0) {
                return null;
            }
            out[inferred] = total / known;
        } else if (known != total) {
            return null;
        }
        return x.reshape(out);
    }

    /** ONNX Transpose over any element type: output axis i is input axis perm[i] (default: reversed). */
    static HostTensor transpose(HostTensor x, List<Long> permList) {
        int rank = x.rank();
        int[] perm = new int[rank];
        if (permList.isEmpty()) {
            for (int i = 0; i < rank; i++) {
                perm[i] = rank - 1 - i;
            }
        } else {
            if (permList.size() != rank) {
                return null;
            }
            boolean[] seen = new boolean[rank];
            for (int i = 0; i < rank; i++) {
                long p = permList.get(i);
                if (p < 0 || p >= rank || seen[(int) p]) {
                    return null;
                }
                seen[(int) p] = true;
                perm[i] = (int) p;
            }
        }
        long[] in = x.shape();
        long[] out = new long[rank];
        for (int i = 0; i < rank; i++) {
            out[i] = in[perm[i]];
        }
        long[] inStrides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            inStrides[i] = s;
            s *= in[i];
        }
        int size = x.type().bytes;
        int n = Math.toIntExact(x.numel());
        ByteBuffer src = x.bytes();
        ByteBuffer dst = ByteBuffer.allocate(n * size).order(ByteOrder.LITTLE_ENDIAN);
        int[] idx = new int[rank];
        byte[] element = new byte[size];
        for (int k = 0; k < n; k++) {
            long from = 0;
            for (int i = 0; i < rank; i++) {
                from += idx[i] * inStrides[perm[i]];
            }
            src.position(Math.toIntExact(from * size));
            src.get(element);
            dst.put(element);
            for (int i = rank - 1; i >= 0; i--) {
                if (++idx[i] < out[i]) {
                    break;
                }
                idx[i] = 0;
            }
        }
        dst.flip();
        return new HostTensor(x.type(), out, dst);
    }
}
