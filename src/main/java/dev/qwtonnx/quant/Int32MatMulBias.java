package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.prepare.TensorFacts;
import dev.qwtonnx.verify.OrtKernels;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Keeps quantized MatMuls with a 2-D input integer in ORT. ORT's MatMulAddFusion turns such a
 * MatMul and its bias Add into a Gemm before its QDQ fusions look; with a float bias and a float
 * output that Gemm stays float (ORT 1.29 and 1.30 run no integer kernel for a one-layer [N,K]
 * model). With the bias as int32 at x_scale·w_scale[c] read through a DequantizeLinear, as a
 * Conv's, ORT fuses the Gemm into QGemm with a float output.
 *
 * <p>Which MatMuls ORT makes a Gemm of is asked of ORT itself (its optimized graph): a Gemm that
 * reads the MatMul's own activation (no Reshape before it, so a 2-D input) and its weight
 * DequantizeLinear. Static inputs of rank 3 or more, which ORT reshapes around the Gemm, are
 * {@link FullRankMatMulBias}'s. ORT is not asked where every candidate's input is known to have
 * another rank (a transformer's [batch, seq, hidden]). Only the bias changes: its Add reads the new
 * DequantizeLinear instead of the float constant.
 */
public final class Int32MatMulBias implements Pass {
    public static final String NAME = "int32-matmul-bias";

    @Override
    public String name() {
        return NAME;
    }

    /** A quantized MatMul whose bias Add reads a float constant of one value per column, read by nothing else. */
    private record Candidate(NodeProto matMul, NodeProto xdq, NodeProto wdq, LayerMatcher.BiasAdd bias) {
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        TensorFacts facts = TensorFacts.of(model.graph());
        Map<String, Candidate> byWeight = new HashMap<>();
        boolean mayBeGemm = false;
        for (NodeProto n : g.nodes()) {
            Candidate c = candidate(g, n);
            if (c != null) {
                byWeight.put(n.getInput(1), c);
                int rank = facts.rank(n.getInput(0));
                mayBeGemm |= rank < 0 || rank == 2;
            }
        }
        if (!mayBeGemm) {
            return PassResult.unchanged(model);
        }
        GraphEditor o = new GraphEditor(OrtKernels.optimized(model).graph());
        Set<String> done = new HashSet<>();
        boolean changed = false;
        for (NodeProto gemm : o.nodes()) {
            Candidate c = gemm.getOpType().equals("Gemm") && gemm.getInputCount() >= 3
                    ? byWeight.get(gemm.getInput(1)) : null;
            if (c == null || !gemm.getInput(0).equals(c.matMul().getInput(0)) || !done.add(c.matMul().getName())) {
                continue; // not one of ours, or reshaped around the Gemm (rank 3 or more)
            }
            float xScale = Tensors.floats(g.initializer(c.xdq().getInput(1)))[0];
            float[] wScales = Tensors.floats(g.initializer(c.wdq().getInput(1)));
            NodeProto add = c.bias().add();
            String constant = c.bias().constant();
            TensorProto b = g.initializer(constant);
            String dq = QdqQuantizer.int32Bias(g, add, Tensors.floats(b), QuantMath.biasScales(xScale, wScales),
                    constant, Tensors.dims(b), b.getDimsCount() - 1, NAME);
            g.replace(add, add.toBuilder().setInput(add.getInput(0).equals(constant) ? 0 : 1, dq).build());
            g.removeInitializerIfUnused(constant);
            changed = true;
        }
        return changed ? PassResult.changed(model.withGraph(g.build())) : PassResult.unchanged(model);
    }

    private static Candidate candidate(GraphEditor g, NodeProto n) {
        if (!n.getOpType().equals("MatMul") || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() != 2) {
            return null;
        }
        NodeProto xdq = dq(g, n.getInput(0));
        NodeProto wdq = dq(g, n.getInput(1));
        TensorProto w = wdq == null ? null : g.initializer(wdq.getInput(0));
        TensorProto xs = xdq == null ? null : g.initializer(xdq.getInput(1));
        if (w == null || w.getDimsCount() != 2 || Nodes.intAttr(wdq, "axis", 1) != 1 || xs == null || Tensors.floats(xs).length != 1
                || g.initializer(wdq.getInput(1)) == null
                || Tensors.floats(g.initializer(wdq.getInput(1))).length != w.getDims(1)) {
            return null; // not a per-column quantized weight with a per-tensor activation
        }
        LayerMatcher.BiasAdd bias = LayerMatcher.biasAdd(g, n.getOutput(0), w.getDims(1));
        return bias == null || g.useCount(bias.constant()) != 1 ? null : new Candidate(n, xdq, wdq, bias);
    }

    private static NodeProto dq(GraphEditor g, String tensor) {
        NodeProto p = g.producer(tensor);
        return p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain())
                && p.getInputCount() >= 2 ? p : null;
    }
}
