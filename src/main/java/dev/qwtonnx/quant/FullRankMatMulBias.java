package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Keeps quantized MatMuls with a static input of rank 3 or more integer in ORT. For such a MatMul
 * followed by a bias Add, ORT's MatMulAddFusion rewrites MatMul + Add into Reshape → float Gemm →
 * Reshape before its QDQ fusions look, so the layer would run in float. That fusion only takes a
 * bias of shape [N]; the same values as [1, …, 1, N] (same broadcast, same result) leave the MatMul
 * to the QDQ fusion, which makes it MatMulIntegerToFloat.
 *
 * <p>Which MatMuls ORT takes is asked of ORT itself (its optimized graph), and only those biases
 * change: a [N] bias elsewhere lets ORT fuse Add + Gelu into BiasGelu, which a full-rank one would
 * block. Nodes are untouched; only bias initializers change shape.
 *
 * <p>Each MatMul with a quantized weight that the pass leaves as it is comes back in the result
 * as a {@link Rejection} saying which check it failed.
 */
public final class FullRankMatMulBias implements Pass {
    public static final String NAME = "full-rank-matmul-bias";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        List<Rejection> rejections = new ArrayList<>();
        // Weight DequantizeLinear output → the MatMul reading it. ORT's optimized graph is a model of its own; the
        // names of the values it keeps (here the weight its Gemm reads) are the only link between its nodes and ours.
        Map<String, NodeProto> byWeight = new LinkedHashMap<>();
        Map<NodeProto, String> biasOf = new IdentityHashMap<>();
        for (NodeProto n : g.nodes()) {
            NodeProto wdq = n.getOpType().equals("MatMul") && n.getInputCount() == 2 ? g.producer(n.getInput(1)) : null;
            if (wdq == null || !wdq.getOpType().equals("DequantizeLinear")) {
                continue; // not a MatMul with a quantized weight: not looked at
            }
            TensorProto w = g.initializer(wdq.getInput(0));
            if (w == null || w.getDimsCount() != 2) {
                rejections.add(reject(n, "its weight is not a constant 2-D tensor"));
                continue;
            }
            LayerMatcher.BiasAdd bias = LayerMatcher.biasAdd(g, n.getOutput(0), w.getDims(1));
            if (bias == null) {
                rejections.add(reject(n, Int32MatMulBias.noBiasAdd(g, n.getOutput(0), w.getDims(1))));
                continue;
            }
            int biasRank = g.initializer(bias.constant()).getDimsCount();
            if (biasRank != 1) {
                rejections.add(reject(n, "its bias '" + bias.constant() + "' has rank " + biasRank
                        + " already (only a [N] bias is changed)"));
                continue;
            }
            NodeProto earlier = byWeight.put(n.getInput(1), n);
            if (earlier != null) {
                rejections.add(reject(earlier, Nodes.describe(n) + " reads the same weight"));
            }
            biasOf.put(n, bias.constant());
        }
        if (!byWeight.isEmpty() && !anyFullyStaticInput(model)) {
            for (NodeProto n : byWeight.values()) {
                rejections.add(reject(n, "no graph input has a fully static shape, which ORT's MatMulAddFusion needs"
                        + " to reshape a MatMul's input around a Gemm"));
            }
            return PassResult.unchanged(model, rejections);
        }
        if (byWeight.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        Model optimized = OrtKernels.optimized(model);
        GraphEditor o = new GraphEditor(optimized.graph());
        Set<NodeProto> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<NodeProto> twoD = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<String> rewritten = new HashSet<>();
        Set<String> done = new HashSet<>();
        boolean changed = false;
        for (NodeProto gemm : o.nodes()) {
            NodeProto n = gemm.getOpType().equals("Gemm") && gemm.getInputCount() >= 2
                    ? byWeight.get(gemm.getInput(1)) : null;
            if (n == null) {
                continue; // not one of ours
            }
            seen.add(n);
            String bias = biasOf.get(n);
            int rank = outputRank(o, gemm);
            if (rank < 3) {
                twoD.add(n); // not reshaped by the fusion
                continue;
            }
            if (!done.add(bias) || g.useCount(bias) != 1) {
                continue; // already reshaped, or a bias others read too (reported below)
            }
            TensorProto b = g.initializer(bias);
            long[] dims = new long[rank];
            java.util.Arrays.fill(dims, 1);
            dims[rank - 1] = Tensors.dims(b)[0];
            g.putInitializer(Tensors.floatTensor(bias, dims, Tensors.floats(b)));
            rewritten.add(bias);
            changed = true;
        }
        for (NodeProto n : byWeight.values()) {
            String bias = biasOf.get(n);
            if (rewritten.contains(bias)) {
                continue;
            }
            if (!seen.contains(n)) {
                rejections.add(reject(n, "ORT's optimized graph has no float Gemm reading its weight, so its [N] bias"
                        + " needs no change"));
            } else if (twoD.contains(n)) {
                rejections.add(reject(n, "ORT makes a Gemm of it on its input as it is, not reshaped ("
                        + Int32MatMulBias.NAME + "'s case)"));
            } else if (g.useCount(bias) != 1) {
                rejections.add(reject(n, "its bias '" + bias + "' is also read by another node"));
            }
        }
        return changed ? PassResult.changed(model.withGraph(g.build()), rejections)
                : PassResult.unchanged(model, rejections);
    }

    private static Rejection reject(NodeProto matMul, String why) {
        return new Rejection(NAME, Nodes.describe(matMul), why);
    }

    /** The rank ORT's fusion restores after its Gemm: the length of the shape its output Reshape takes. */
    private static int outputRank(GraphEditor o, NodeProto gemm) {
        for (NodeProto r : o.consumers(gemm.getOutput(0))) {
            TensorProto shape = r.getOpType().equals("Reshape") ? o.initializer(r.getInput(1)) : null;
            if (shape != null && shape.getDimsCount() == 1) {
                return (int) shape.getDims(0);
            }
        }
        return -1;
    }

    private static boolean anyFullyStaticInput(Model model) {
        for (ValueInfoProto in : model.graph().getInputList()) {
            if (!in.getType().hasTensorType() || !in.getType().getTensorType().hasShape()) {
                continue;
            }
            boolean staticShape = true;
            for (TensorShapeProto.Dimension d : in.getType().getTensorType().getShape().getDimList()) {
                staticShape &= d.hasDimValue();
            }
            if (staticShape) {
                return true;
            }
        }
        return false;
    }
}
