package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.TensorFacts;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
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
 *
 * <p>Each MatMul with a quantized weight that the pass leaves as it is comes back in the result
 * as a {@link Rejection} saying which check it failed.
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

    /** A candidate, or why the MatMul is not one (null for a node this pass does not look at). */
    private record Match(Candidate candidate, String rejection) {
        static Match of(Candidate c) {
            return new Match(c, null);
        }

        static Match rejected(String why) {
            return new Match(null, why);
        }
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        TensorFacts facts = TensorFacts.of(model.graph());
        // Keyed by the two values the MatMul reads, activation and weight: ORT's Gemm reads the same two when it
        // takes the MatMul as it is (its input not reshaped). ORT's optimized graph is a model of its own, linked
        // to ours only by names: the values it keeps keep theirs, while a fused node gets a generated one (the
        // MatMul's name + "/MatMulAddFusion", suffixed when taken).
        Map<List<String>, Candidate> byInputs = new LinkedHashMap<>();
        List<Rejection> rejections = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            Match m = candidate(g, n);
            if (m == null) {
                continue;
            }
            if (m.rejection() != null) {
                rejections.add(reject(n, m.rejection()));
                continue;
            }
            int rank = facts.rank(n.getInput(0));
            if (rank >= 0 && rank != 2) {
                rejections.add(reject(n, "its input has rank " + rank + ", and ORT makes a Gemm only of a MatMul"
                        + " with a 2-D input"));
                continue;
            }
            Candidate earlier = byInputs.put(List.of(n.getInput(0), n.getInput(1)), m.candidate());
            if (earlier != null) {
                rejections.add(reject(earlier.matMul(), Nodes.describe(n) + " reads the same input and weight"));
            }
        }
        if (byInputs.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        GraphEditor o = new GraphEditor(OrtKernels.optimized(model).graph());
        Set<Candidate> done = Collections.newSetFromMap(new IdentityHashMap<>());
        boolean changed = false;
        for (NodeProto gemm : o.nodes()) {
            Candidate c = gemm.getOpType().equals("Gemm") && gemm.getInputCount() >= 3
                    ? byInputs.get(List.of(gemm.getInput(0), gemm.getInput(1))) : null;
            if (c == null || !done.add(c)) {
                continue; // not one of ours, or already rewritten
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
        for (Candidate c : byInputs.values()) {
            if (!done.contains(c)) {
                rejections.add(reject(c.matMul(), "ORT's optimized graph has no float Gemm reading its input and"
                        + " weight, so it needs no int32 bias (ORT fuses it as it is, or makes no Gemm of it)"));
            }
        }
        return changed ? PassResult.changed(model.withGraph(g.build()), rejections)
                : PassResult.unchanged(model, rejections);
    }

    private static Rejection reject(NodeProto matMul, String why) {
        return new Rejection(NAME, Nodes.describe(matMul), why);
    }

    /**
     * A MatMul whose weight is read through a DequantizeLinear is looked at: a candidate, or the
     * reason it is not one. Any other node is not looked at (null).
     */
    private static Match candidate(GraphEditor g, NodeProto n) {
        if (!n.getOpType().equals("MatMul") || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() != 2) {
            return null;
        }
        NodeProto wdq = dq(g, n.getInput(1));
        if (wdq == null) {
            return null; // not quantized
        }
        NodeProto xdq = dq(g, n.getInput(0));
        if (xdq == null) {
            return Match.rejected("its input is not read through a DequantizeLinear");
        }
        TensorProto w = g.initializer(wdq.getInput(0));
        if (w == null || w.getDimsCount() != 2) {
            return Match.rejected("its weight is not a constant 2-D tensor");
        }
        if (Nodes.intAttr(wdq, "axis", 1) != 1) {
            return Match.rejected("its weight is not quantized per column (axis 1)");
        }
        TensorProto xs = g.initializer(xdq.getInput(1));
        if (xs == null || Tensors.floats(xs).length != 1) {
            return Match.rejected("its input's scale is not one constant value (per tensor)");
        }
        TensorProto ws = g.initializer(wdq.getInput(1));
        if (ws == null || Tensors.floats(ws).length != w.getDims(1)) {
            return Match.rejected("its weight's scale is not a constant of one value per column");
        }
        LayerMatcher.BiasAdd bias = LayerMatcher.biasAdd(g, n.getOutput(0), w.getDims(1));
        if (bias == null) {
            return Match.rejected(noBiasAdd(g, n.getOutput(0), w.getDims(1)));
        }
        if (g.useCount(bias.constant()) != 1) {
            return Match.rejected("its bias '" + bias.constant() + "' is also read by another node");
        }
        return Match.of(new Candidate(n, xdq, wdq, bias));
    }

    /**
     * Why {@link LayerMatcher#biasAdd} finds no bias Add after a MatMul output of {@code channels}
     * columns, checked in the order it checks.
     */
    static String noBiasAdd(GraphEditor g, String output, long channels) {
        if (g.isGraphOutput(output)) {
            return "its output is a graph output (no bias Add)";
        }
        List<NodeProto> readers = g.consumers(output);
        if (readers.size() != 1) {
            return "its output is read by " + readers.size() + " nodes, not by one bias Add";
        }
        NodeProto add = readers.get(0);
        if (!add.getOpType().equals("Add") || !Model.isDefaultDomain(add.getDomain()) || add.getInputCount() != 2) {
            return "its output feeds " + Nodes.describe(add) + ", not a bias Add";
        }
        return "its Add does not add a float constant of " + channels + " values (one per column)";
    }

    private static NodeProto dq(GraphEditor g, String tensor) {
        NodeProto p = g.producer(tensor);
        return p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain())
                && p.getInputCount() >= 2 ? p : null;
    }
}
