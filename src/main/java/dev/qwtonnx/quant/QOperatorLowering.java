package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.TensorFacts;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Lowers a QDQ model's quantized layers to explicit integer operators, with the same scales,
 * zero points, integer weights and int32 biases (so CWAC, already folded into weight scales and
 * biases, carries over exactly):
 * <ul>
 * <li>{@code DQ → Conv → Q} becomes {@code QLinearConv} (int32 bias at x_scale·w_scale[c]);</li>
 * <li>{@code DQ → MatMul → Q} (no bias) becomes {@code QLinearMatMul} (per-column w_scale);</li>
 * <li>{@code DQ → MatMul [→ Add bias]} with a float output becomes com.microsoft
 *     {@code MatMulIntegerToFloat}, the bias Add's constant taken as its float bias input: the very
 *     kernel ORT fuses a QDQ MatMul into, run here without relying on the fusion, with per-column
 *     weight scales and a float bias (CWAC's shift lands in it unrounded); an int32 bias read
 *     through a DequantizeLinear (see {@link Int32MatMulBias}) becomes that float bias, with the
 *     values the DequantizeLinear computes;</li>
 * <li>{@code DQ → Gemm [→ Q]} becomes com.microsoft {@code QGemm} (int32 bias; quantized output
 *     where the Gemm's output was re-quantized, float otherwise).</li>
 * </ul>
 * Activation QuantizeLinear nodes stay where the float graph enters the integer one, and
 * DequantizeLinear nodes where float operators read a quantized tensor; Q/DQ pairs between two
 * lowered layers disappear. A layer that does not fit a pattern stays in QDQ form (ORT still fuses
 * it).
 */
public final class QOperatorLowering implements Pass {
    public static final String NAME = "lower-qoperator";
    public static final String MS_DOMAIN = Model.MICROSOFT_DOMAIN;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph());
        boolean usesMs = false;
        int lowered = 0;
        Set<String> maybeUnused = new LinkedHashSet<>();
        // Shapes are read only where a bias is [1, …, 1, N], and from the graph as it was (layers do not change ranks).
        GraphProto before = model.graph();
        Supplier<TensorFacts> facts = memoize(() -> TensorFacts.of(before));
        for (NodeProto n : g.nodesSnapshot()) {
            LayerKind kind = LayerKind.of(n.getOpType());
            if (kind == null || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() < 2) {
                continue;
            }
            Match m = match(g, n, kind, facts);
            if (m == null) {
                continue;
            }
            NodeProto rewritten = rewrite(g, m, maybeUnused);
            usesMs |= MS_DOMAIN.equals(rewritten.getDomain());
            lowered++;
        }
        if (lowered == 0) {
            return PassResult.unchanged(model);
        }
        removeDeadDequantize(g, maybeUnused);
        ModelProto.Builder b = model.proto().toBuilder().setGraph(g.build());
        if (usesMs && model.opsetVersion(MS_DOMAIN) < 0) {
            b.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(MS_DOMAIN).setVersion(1));
        }
        return PassResult.changed(new Model(b.build()));
    }

    /** A layer in QDQ form: its DequantizeLinear inputs, optional bias Add and optional output Q. */
    private record Match(LayerKind kind, NodeProto layer, NodeProto xdq, NodeProto wdq, NodeProto bdq, NodeProto biasAdd,
            String biasConst, NodeProto outQ) {
    }

    private static Match match(GraphEditor g, NodeProto n, LayerKind kind, Supplier<TensorFacts> facts) {
        NodeProto xdq = dq(g, n.getInput(0));
        NodeProto wdq = dq(g, n.getInput(1));
        if (xdq == null || wdq == null || xdq.getInputCount() < 3 || wdq.getInputCount() < 3
                || g.initializer(wdq.getInput(0)) == null
                || (g.initializer(wdq.getInput(0)).getDataType() != TensorProto.DataType.INT8_VALUE
                        && g.initializer(wdq.getInput(0)).getDataType() != TensorProto.DataType.UINT8_VALUE)
                || g.initializer(xdq.getInput(1)) == null || Tensors.floats(g.initializer(xdq.getInput(1))).length != 1
                || !eightBit(g.initializer(xdq.getInput(2)))) {
            return null; // not a layer with an 8-bit quantized activation and a constant 8-bit weight
        }
        NodeProto bdq = null;
        if (kind != LayerKind.MATMUL && n.getInputCount() > 2 && !n.getInput(2).isEmpty()) {
            bdq = dq(g, n.getInput(2));
            if (bdq == null || g.initializer(bdq.getInput(0)) == null
                    || g.initializer(bdq.getInput(0)).getDataType() != TensorProto.DataType.INT32_VALUE) {
                return null;
            }
        }
        String out = n.getOutput(0);
        NodeProto add = null;
        String addConst = null;
        LayerMatcher.BiasAdd bias = kind == LayerKind.MATMUL
                ? LayerMatcher.biasAdd(g, out, Tensors.dims(g.initializer(wdq.getInput(0)))[1]) : null;
        // MatMulIntegerToFloat takes its bias as [N]. A bias Add's constant may also be [1, …, 1, N]
        // (FullRankMatMulBias writes those for ORT's QDQ path), the same values; it goes in as [N] where the
        // MatMul's output is known to have at least its rank, so that dropping its leading ones cannot lower
        // the result's rank.
        TensorProto biasConst = bias == null ? null : g.initializer(bias.constant());
        if (biasConst != null && (biasConst.getDimsCount() == 1
                || facts.get().rank(out) >= biasConst.getDimsCount())) {
            add = bias.add();
            addConst = bias.constant();
        } else if (bias == null && kind == LayerKind.MATMUL) {
            // An int32 bias read through a DequantizeLinear by the Add (Int32MatMulBias): its float values.
            LayerMatcher.Int32BiasAdd b = LayerMatcher.int32BiasAdd(g, out, Tensors.dims(g.initializer(wdq.getInput(0)))[1]);
            // MatMulIntegerToFloat's bias is [N]; the DequantizeLinear goes with the Add, so it must serve it alone.
            if (b != null && g.initializer(b.dq().getInput(0)).getDimsCount() == 1 && g.useCount(b.dq().getOutput(0)) == 1) {
                add = b.add();
                bdq = b.dq();
            }
        }
        NodeProto outQ = null;
        if (add == null && !g.isGraphOutput(out) && g.consumers(out).size() == 1) {
            NodeProto q = g.consumers(out).get(0);
            if (q.getOpType().equals("QuantizeLinear") && Model.isDefaultDomain(q.getDomain()) && q.getInputCount() == 3
                    && g.initializer(q.getInput(1)) != null && Tensors.floats(g.initializer(q.getInput(1))).length == 1) {
                outQ = q;
            }
        }
        if (kind == LayerKind.CONV && outQ == null) {
            return null; // no Conv kernel with an int8 input and a float output
        }
        return new Match(kind, n, xdq, wdq, bdq, add, addConst, outQ);
    }

    /** Whether a zero point is an int8 constant of zeros. */
    private static boolean zeroInt8(TensorProto zeroPoint) {
        if (zeroPoint == null || zeroPoint.getDataType() != TensorProto.DataType.INT8_VALUE) {
            return false;
        }
        for (float v : Tensors.floats(zeroPoint)) {
            if (v != 0) {
                return false;
            }
        }
        return true;
    }

    private static <T> Supplier<T> memoize(Supplier<T> s) {
        Object[] value = new Object[1];
        return () -> {
            if (value[0] == null) {
                value[0] = s.get();
            }
            @SuppressWarnings("unchecked")
            T t = (T) value[0];
            return t;
        };
    }

    /** Whether a zero point is a constant of an 8-bit type (the integer operators take no 16-bit activation). */
    private static boolean eightBit(TensorProto zeroPoint) {
        return zeroPoint != null && (zeroPoint.getDataType() == TensorProto.DataType.UINT8_VALUE
                || zeroPoint.getDataType() == TensorProto.DataType.INT8_VALUE);
    }

    /** {@code name} if it is a vector, else a new [N] constant of its values (the original stays for any other reader). */
    private static String vector(GraphEditor g, String name) {
        TensorProto t = g.initializer(name);
        if (t.getDimsCount() == 1) {
            return name;
        }
        String v = g.names().fresh(name + "_vector");
        g.putInitializer(t.toBuilder().setName(v).clearDims().addDims(t.getDims(t.getDimsCount() - 1)).build());
        return v;
    }

    /** The float values a DequantizeLinear of an int32 bias computes ((float) q · scale, zero point 0), as a new constant. */
    private static String dequantizedBias(GraphEditor g, NodeProto bdq) {
        TensorProto q = g.initializer(bdq.getInput(0));
        long[] v = Tensors.longs(q);
        float[] s = Tensors.floats(g.initializer(bdq.getInput(1)));
        float[] f = new float[v.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) v[i] * s[i];
        }
        String name = g.names().fresh(bdq.getInput(0) + "_float");
        g.putInitializer(Tensors.floatTensor(name, Tensors.dims(q), f));
        return name;
    }

    private static NodeProto dq(GraphEditor g, String tensor) {
        NodeProto p = g.producer(tensor);
        return p != null && p.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(p.getDomain()) ? p : null;
    }

    private static NodeProto rewrite(GraphEditor g, Match m, Set<String> maybeUnused) {
        NodeProto n = m.layer();
        String xq = m.xdq().getInput(0);
        String xs = m.xdq().getInput(1);
        String xz = m.xdq().getInput(2);
        String wq = m.wdq().getInput(0);
        String ws = m.wdq().getInput(1);
        String wz = m.wdq().getInput(2);
        maybeUnused.addAll(n.getInputList());
        // The operator takes the layer node's place and its name, so figures, fits and reports keyed by the
        // layer's name read the same in both forms (the node's metadata says it was lowered).
        String name = n.getName().isEmpty() ? g.names().fresh("layer_" + NAME) : n.getName();
        NodeProto.Builder b = NodeProto.newBuilder().setName(name);
        b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(Nodes.CREATED_BY).setValue(NAME));
        // The lowered layer keeps the float node it came from, so verify and compensate pair it by provenance.
        String from = Nodes.metadata(n, Nodes.FROM);
        if (from != null) {
            b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(Nodes.FROM).setValue(from));
        }
        List<NodeProto> replaced = new ArrayList<>(List.of(n));
        switch (m.kind()) {
            case CONV -> {
                b.setOpType("QLinearConv").addAllInput(List.of(xq, xs, xz, wq, ws, wz, m.outQ().getInput(1),
                        m.outQ().getInput(2)));
                if (m.bdq() != null) {
                    b.addInput(m.bdq().getInput(0));
                }
                b.addAllAttribute(n.getAttributeList()).addOutput(m.outQ().getOutput(0));
                replaced.add(m.outQ());
            }
            case MATMUL -> {
                if (m.outQ() != null) {
                    b.setOpType("QLinearMatMul").addAllInput(List.of(xq, xs, xz, wq, ws, wz, m.outQ().getInput(1),
                            m.outQ().getInput(2))).addOutput(m.outQ().getOutput(0));
                    replaced.add(m.outQ());
                } else {
                    // An all-zero int8 weight zero point is the operator's default; given, it sends MLAS down its
                    // per-column zero-point path (MiniLM about 1 % slower at one thread).
                    b.setOpType("MatMulIntegerToFloat").setDomain(MS_DOMAIN)
                            .addAllInput(List.of(xq, wq, xs, ws, xz, zeroInt8(g.initializer(wz)) ? "" : wz));
                    if (m.biasAdd() != null) {
                        String bias = m.biasConst() != null ? vector(g, m.biasConst()) : dequantizedBias(g, m.bdq());
                        b.addInput(bias).addOutput(m.biasAdd().getOutput(0));
                        replaced.add(m.biasAdd());
                    } else {
                        b.addOutput(n.getOutput(0));
                    }
                }
            }
            case GEMM -> {
                b.setOpType("QGemm").setDomain(MS_DOMAIN).addAllInput(List.of(xq, xs, xz, wq, ws, wz,
                        m.bdq() != null ? m.bdq().getInput(0) : ""));
                for (AttributeProto a : n.getAttributeList()) {
                    if (!a.getName().equals("beta")) {
                        b.addAttribute(a);
                    }
                }
                if (m.outQ() != null) {
                    b.addInput(m.outQ().getInput(1)).addInput(m.outQ().getInput(2)).addOutput(m.outQ().getOutput(0));
                    replaced.add(m.outQ());
                } else {
                    b.addOutput(n.getOutput(0));
                }
            }
        }
        NodeProto lowered = b.build();
        g.replace(n, lowered);
        for (NodeProto r : replaced.subList(1, replaced.size())) {
            maybeUnused.addAll(r.getInputList());
            g.remove(r);
        }
        return lowered;
    }

    /** Drops DequantizeLinear nodes nothing reads any more, then the constants only they read. */
    private static void removeDeadDequantize(GraphEditor g, Set<String> maybeUnused) {
        for (NodeProto n : g.nodesSnapshot()) {
            if (n.getOpType().equals("DequantizeLinear") && Model.isDefaultDomain(n.getDomain())
                    && g.useCount(n.getOutput(0)) == 0) {
                maybeUnused.addAll(n.getInputList());
                g.remove(n);
            }
        }
        for (String t : maybeUnused) {
            g.removeInitializerIfUnused(t);
        }
    }
}
