package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.HashMap;
import java.util.HashSet;
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
        // Weight DequantizeLinear output → the bias initializer of the Add after its MatMul.
        Map<String, String> biasByWeight = new HashMap<>();
        for (NodeProto n : g.nodes()) {
            NodeProto wdq = n.getOpType().equals("MatMul") && n.getInputCount() == 2 ? g.producer(n.getInput(1)) : null;
            TensorProto w = wdq != null && wdq.getOpType().equals("DequantizeLinear")
                    ? g.initializer(wdq.getInput(0)) : null;
            LayerMatcher.BiasAdd bias = w == null || w.getDimsCount() != 2 ? null
                    : LayerMatcher.biasAdd(g, n.getOutput(0), w.getDims(1));
            if (bias != null && g.initializer(bias.constant()).getDimsCount() == 1) {
                biasByWeight.put(n.getInput(1), bias.constant());
            }
        }
        if (biasByWeight.isEmpty() || !anyFullyStaticInput(model)) {
            return PassResult.unchanged(model); // MatMulAddFusion needs a static input shape
        }
        Model optimized = OrtKernels.optimized(model);
        GraphEditor o = new GraphEditor(optimized.graph());
        Set<String> done = new HashSet<>();
        boolean changed = false;
        for (NodeProto gemm : o.nodes()) {
            String bias = gemm.getOpType().equals("Gemm") && gemm.getInputCount() >= 2
                    ? biasByWeight.get(gemm.getInput(1)) : null;
            int rank = bias == null ? -1 : outputRank(o, gemm);
            if (rank < 3 || !done.add(bias) || g.useCount(bias) != 1) {
                continue; // not one of ours, not reshaped by the fusion, or a bias others read too
            }
            TensorProto b = g.initializer(bias);
            long[] dims = new long[rank];
            java.util.Arrays.fill(dims, 1);
            dims[rank - 1] = Tensors.dims(b)[0];
            g.putInitializer(Tensors.floatTensor(bias, dims, Tensors.floats(b)));
            changed = true;
        }
        return changed ? PassResult.changed(model.withGraph(g.build())) : PassResult.unchanged(model);
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
