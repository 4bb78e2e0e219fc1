package dev.qwtonnx.model;

import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What is statically known about the top-level tensors of a graph: element type and rank, with
 * dimensions where they are fixed. Seeded from graph inputs, value_info and initializers, then
 * propagated in node order through a deliberately short list of operators (read with the
 * semantics of the graph's own opset, i.e. before any upgrade). Anything else stays unknown, so an
 * answer given is an answer that holds; callers must treat "unknown" as "could be anything".
 */
public final class TensorFacts {
    /** Element type code (0 = unknown) and dims (null = rank unknown; -1 = that dim unknown). */
    record Fact(int elemType, long[] dims) {
        int rank() {
            return dims == null ? -1 : dims.length;
        }
    }

    private static final Fact UNKNOWN = new Fact(0, null);

    private static final Set<String> SAME_SHAPE = Set.of("Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh",
            "BatchNormalization", "Ceil", "Celu", "Clip", "Cos", "Cosh", "Dropout", "Elu", "Erf", "Exp", "Floor",
            "HardSigmoid", "Hardmax", "Identity", "InstanceNormalization", "LeakyRelu", "Log", "LogSoftmax", "LRN",
            "LpNormalization", "MeanVarianceNormalization", "Neg", "Not", "PRelu", "Reciprocal", "Relu", "Round",
            "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan",
            "Tanh", "ThresholdedRelu");
    private static final Set<String> BROADCAST = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum",
            "Mean", "Mod", "And", "Or", "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where");
    private static final Set<String> BOOL_RESULT = Set.of("And", "Or", "Xor", "Not", "Equal", "Less", "Greater",
            "LessOrEqual", "GreaterOrEqual");
    /** Same rank as input 0, dims not tracked. */
    private static final Set<String> SAME_RANK = Set.of("Conv", "ConvTranspose", "MaxPool", "AveragePool",
            "GlobalAveragePool", "GlobalMaxPool", "Resize", "Upsample", "Pad", "Tile", "Slice", "DepthToSpace",
            "SpaceToDepth", "TopK", "CumSum");

    private final Map<String, Fact> facts = new HashMap<>();
    /** Small int64 initializers by value: axes given as an input (opset 13 on) are read from them. */
    private final Map<String, TensorProto> smallInts = new HashMap<>();

    private TensorFacts() {
    }

    public static TensorFacts of(GraphProto g) {
        TensorFacts f = new TensorFacts();
        for (ValueInfoProto v : g.getInputList()) {
            f.seed(v);
        }
        for (ValueInfoProto v : g.getValueInfoList()) {
            f.seed(v);
        }
        for (ValueInfoProto v : g.getOutputList()) {
            f.seed(v);
        }
        for (TensorProto t : g.getInitializerList()) {
            f.facts.put(t.getName(), new Fact(t.getDataType(), Tensors.dims(t)));
            if (t.getDataType() == TensorProto.DataType.INT64_VALUE && Tensors.dims(t).length <= 1
                    && (t.getRawData().size() <= 64 * 8 && t.getInt64DataCount() <= 64)) {
                f.smallInts.put(t.getName(), t);
            }
        }
        for (NodeProto n : g.getNodeList()) {
            if (!Model.isDefaultDomain(n.getDomain()) || n.getOutputCount() == 0) {
                continue;
            }
            Fact out;
            try {
                out = f.infer(n);
            } catch (RuntimeException e) {
                out = UNKNOWN; // a malformed node teaches us nothing
            }
            if (out == null || (out.elemType == 0 && out.dims == null)) {
                continue;
            }
            int outputs = n.getOpType().equals("Split") ? n.getOutputCount() : 1;
            for (int i = 0; i < outputs; i++) {
                String o = n.getOutput(i);
                if (!o.isEmpty()) {
                    f.merge(o, n.getOpType().equals("Split") ? new Fact(out.elemType, unknownDims(out.rank())) : out);
                }
            }
        }
        return f;
    }

    /** Declared facts (value_info) win; inference fills in what they leave open. */
    private void merge(String name, Fact inferred) {
        Fact declared = facts.get(name);
        if (declared == null) {
            facts.put(name, inferred);
            return;
        }
        int type = declared.elemType != 0 ? declared.elemType : inferred.elemType;
        long[] dims = declared.dims != null ? declared.dims : inferred.dims;
        facts.put(name, new Fact(type, dims));
    }

    Fact get(String name) {
        return facts.getOrDefault(name, UNKNOWN);
    }

    /** The tensor's rank, or -1 where it is not known. */
    public int rank(String name) {
        return get(name).rank();
    }

    /** The size of axis {@code axis} (negative counts from the end), or -1 where it is not known. */
    public long dim(String name, int axis) {
        long[] d = get(name).dims;
        if (d == null) {
            return -1;
        }
        int a = axis < 0 ? d.length + axis : axis;
        return a >= 0 && a < d.length ? d[a] : -1;
    }

    /** The tensor's element type (a TensorProto.DataType code), or 0 where it is not known. */
    public int elemType(String name) {
        return get(name).elemType;
    }

    private void seed(ValueInfoProto v) {
        if (!v.hasType() || !v.getType().hasTensorType()) {
            return;
        }
        TypeProto.Tensor t = v.getType().getTensorType();
        long[] dims = null;
        if (t.hasShape()) {
            TensorShapeProto s = t.getShape();
            dims = new long[s.getDimCount()];
            for (int i = 0; i < dims.length; i++) {
                TensorShapeProto.Dimension d = s.getDim(i);
                dims[i] = d.hasDimValue() && d.getDimValue() >= 0 ? d.getDimValue() : -1;
            }
        }
        facts.put(v.getName(), new Fact(t.getElemType(), dims));
    }

    private static long[] unknownDims(int rank) {
        if (rank < 0) {
            return null;
        }
        long[] d = new long[rank];
        Arrays.fill(d, -1);
        return d;
    }

    private Fact in(NodeProto n, int i) {
        return i < n.getInputCount() && !n.getInput(i).isEmpty() ? get(n.getInput(i)) : UNKNOWN;
    }

    /** The fact about the (first) output of a node, or UNKNOWN. */
    private Fact infer(NodeProto n) {
        String op = n.getOpType();
        Fact x = in(n, 0);
        if (SAME_SHAPE.contains(op)) {
            return new Fact(BOOL_RESULT.contains(op) ? TensorProto.DataType.BOOL_VALUE : x.elemType, x.dims);
        }
        if (SAME_RANK.contains(op)) {
            return new Fact(x.elemType, unknownDims(x.rank()));
        }
        if (BROADCAST.contains(op)) {
            int type = BOOL_RESULT.contains(op) ? TensorProto.DataType.BOOL_VALUE
                    : op.equals("Where") ? in(n, 1).elemType : x.elemType;
            return new Fact(type, broadcast(n));
        }
        switch (op) {
            case "QuantizeLinear":
                // Same shape; the element type is the zero point's (uint8 without one).
                return new Fact(n.getInputCount() > 2 && !n.getInput(2).isEmpty() ? in(n, 2).elemType
                        : TensorProto.DataType.UINT8_VALUE, x.dims);
            case "DequantizeLinear":
                // Same shape; the element type is the scale's (float before opset 19).
                return new Fact(in(n, 1).elemType != 0 ? in(n, 1).elemType : TensorProto.DataType.FLOAT_VALUE, x.dims);
            case "Cast":
                return new Fact((int) Nodes.intAttr(n, "to", 0), x.dims);
            case "IsNaN":
            case "IsInf":
                return new Fact(TensorProto.DataType.BOOL_VALUE, x.dims);
            case "Shape":
                return new Fact(TensorProto.DataType.INT64_VALUE, x.rank() < 0 ? new long[] {-1} : new long[] {x.rank()});
            case "Size":
                return new Fact(TensorProto.DataType.INT64_VALUE, new long[0]);
            case "Constant":
                return constantFact(n);
            case "MatMul": {
                int ra = x.rank();
                int rb = in(n, 1).rank();
                if (ra < 1 || rb < 1) {
                    return new Fact(x.elemType, null);
                }
                int r = ra == 1 && rb == 1 ? 0 : ra == 1 ? rb - 1 : rb == 1 ? ra - 1 : Math.max(ra, rb);
                return new Fact(x.elemType, unknownDims(r));
            }
            case "Gemm":
                return new Fact(x.elemType, unknownDims(2));
            case "Flatten":
                return new Fact(x.elemType, unknownDims(2));
            case "Transpose":
                return transpose(n, x);
            case "Reshape": {
                long[] s = in(n, 1).dims;
                return new Fact(x.elemType, s != null && s.length == 1 && s[0] >= 0 ? unknownDims((int) s[0]) : null);
            }
            case "Expand": {
                long[] s = in(n, 1).dims;
                if (s == null || s.length != 1 || s[0] < 0 || x.rank() < 0) {
                    return new Fact(x.elemType, null);
                }
                return new Fact(x.elemType, unknownDims((int) Math.max(s[0], x.rank())));
            }
            case "ConstantOfShape": {
                long[] s = x.dims;
                int type = Nodes.attr(n, "value").map(a -> a.getT().getDataType()).orElse(TensorProto.DataType.FLOAT_VALUE);
                return new Fact(type, s != null && s.length == 1 && s[0] >= 0 ? unknownDims((int) s[0]) : null);
            }
            case "Concat":
                return concat(n);
            case "Unsqueeze":
                return unsqueeze(n, x);
            case "Squeeze":
                return squeeze(n, x);
            case "Gather": {
                Fact idx = in(n, 1);
                if (x.rank() < 1 || idx.rank() < 0) {
                    return new Fact(x.elemType, null);
                }
                int axis = (int) normalize(Nodes.intAttr(n, "axis", 0), x.rank());
                long[] d = new long[x.rank() - 1 + idx.rank()];
                int k = 0;
                for (int i = 0; i < axis; i++) {
                    d[k++] = x.dims[i];
                }
                for (long v : idx.dims) {
                    d[k++] = v;
                }
                for (int i = axis + 1; i < x.rank(); i++) {
                    d[k++] = x.dims[i];
                }
                return new Fact(x.elemType, d);
            }
            case "Split":
                return new Fact(x.elemType, unknownDims(x.rank()));
            case "Range":
                return new Fact(x.elemType, unknownDims(1));
            case "NonZero":
                return new Fact(TensorProto.DataType.INT64_VALUE, unknownDims(2));
            case "ArgMax":
            case "ArgMin": {
                int r = x.rank() < 0 ? -1 : Nodes.intAttr(n, "keepdims", 1) != 0 ? x.rank() : x.rank() - 1;
                return new Fact(TensorProto.DataType.INT64_VALUE, unknownDims(r));
            }
            default:
                if (op.startsWith("Reduce")) {
                    return reduce(n, x);
                }
                return UNKNOWN;
        }
    }

    private static long normalize(long axis, int rank) {
        return axis < 0 ? axis + rank : axis;
    }

    private long[] broadcast(NodeProto n) {
        int rank = 0;
        for (String i : n.getInputList()) {
            Fact f = i.isEmpty() ? UNKNOWN : get(i);
            if (f.dims == null) {
                return null;
            }
            rank = Math.max(rank, f.rank());
        }
        long[] out = new long[rank];
        for (int k = 0; k < rank; k++) {
            boolean unknown = false;
            long big = 1;
            for (String i : n.getInputList()) {
                long[] d = get(i).dims;
                int pos = k - (rank - d.length);
                if (pos < 0) {
                    continue;
                }
                if (d[pos] < 0) {
                    unknown = true;
                } else if (d[pos] != 1) {
                    big = d[pos];
                }
            }
            out[k] = big != 1 ? big : unknown ? -1 : 1;
        }
        return out;
    }

    private Fact constantFact(NodeProto n) {
        if (n.getAttributeCount() != 1) {
            return UNKNOWN;
        }
        AttributeProto a = n.getAttribute(0);
        return switch (a.getName()) {
            case "value" -> a.hasT() ? new Fact(a.getT().getDataType(), Tensors.dims(a.getT())) : UNKNOWN;
            case "value_float" -> new Fact(TensorProto.DataType.FLOAT_VALUE, new long[0]);
            case "value_int" -> new Fact(TensorProto.DataType.INT64_VALUE, new long[0]);
            case "value_floats" -> new Fact(TensorProto.DataType.FLOAT_VALUE, new long[] {a.getFloatsCount()});
            case "value_ints" -> new Fact(TensorProto.DataType.INT64_VALUE, new long[] {a.getIntsCount()});
            default -> UNKNOWN;
        };
    }

    private static Fact transpose(NodeProto n, Fact x) {
        if (x.dims == null) {
            List<Long> perm = Nodes.intsAttr(n, "perm");
            return new Fact(x.elemType, perm.isEmpty() ? null : unknownDims(perm.size()));
        }
        List<Long> perm = Nodes.intsAttr(n, "perm");
        long[] d = new long[x.rank()];
        for (int i = 0; i < d.length; i++) {
            d[i] = x.dims[perm.isEmpty() ? d.length - 1 - i : perm.get(i).intValue()];
        }
        return new Fact(x.elemType, d);
    }

    private Fact concat(NodeProto n) {
        Fact first = in(n, 0);
        int rank = -1;
        for (String i : n.getInputList()) {
            int r = get(i).rank();
            if (r >= 0) {
                rank = r;
            }
        }
        if (rank < 0) {
            return new Fact(first.elemType, null);
        }
        int axis = (int) normalize(Nodes.intAttr(n, "axis", 0), rank);
        long[] out = unknownDims(rank);
        long sum = 0;
        for (String i : n.getInputList()) {
            long[] d = get(i).dims;
            if (d == null || d.length != rank || d[axis] < 0) {
                sum = -1;
                continue;
            }
            if (sum >= 0) {
                sum += d[axis];
            }
            for (int k = 0; k < rank; k++) {
                if (k != axis && d[k] >= 0) {
                    out[k] = d[k];
                }
            }
        }
        out[axis] = sum;
        return new Fact(first.elemType, out);
    }

    /** Axes from the attribute (before 13) or a constant second input (from 13). */
    private List<Long> axes(NodeProto n) {
        if (Nodes.attr(n, "axes").isPresent()) {
            return Nodes.intsAttr(n, "axes");
        }
        TensorProto t = n.getInputCount() > 1 ? smallInts.get(n.getInput(1)) : null;
        if (t != null && t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) {
            List<Long> out = new java.util.ArrayList<>();
            for (long v : Tensors.longs(t)) {
                out.add(v);
            }
            return out;
        }
        return null;
    }

    private Fact unsqueeze(NodeProto n, Fact x) {
        List<Long> axes = axes(n);
        if (axes == null || x.dims == null) {
            return new Fact(x.elemType, null);
        }
        int r = x.rank() + axes.size();
        boolean[] inserted = new boolean[r];
        for (long a : axes) {
            inserted[(int) normalize(a, r)] = true;
        }
        long[] d = new long[r];
        int k = 0;
        for (int i = 0; i < r; i++) {
            d[i] = inserted[i] ? 1 : x.dims[k++];
        }
        return new Fact(x.elemType, d);
    }

    private Fact squeeze(NodeProto n, Fact x) {
        List<Long> axes = axes(n);
        if (axes == null || x.dims == null) {
            return new Fact(x.elemType, null);
        }
        boolean[] removed = new boolean[x.rank()];
        for (long a : axes) {
            removed[(int) normalize(a, x.rank())] = true;
        }
        long[] d = new long[x.rank() - axes.size()];
        int k = 0;
        for (int i = 0; i < x.rank(); i++) {
            if (!removed[i]) {
                d[k++] = x.dims[i];
            }
        }
        return new Fact(x.elemType, d);
    }

    private Fact reduce(NodeProto n, Fact x) {
        List<Long> axes = axes(n);
        boolean keep = Nodes.intAttr(n, "keepdims", 1) != 0;
        if (x.dims == null || (axes == null && n.getInputCount() > 1)
                || Nodes.intAttr(n, "noop_with_empty_axes", 0) != 0) {
            return new Fact(x.elemType, null);
        }
        boolean[] reduced = new boolean[x.rank()];
        if (axes == null || axes.isEmpty()) {
            Arrays.fill(reduced, true);
        } else {
            for (long a : axes) {
                reduced[(int) normalize(a, x.rank())] = true;
            }
        }
        long[] d = new long[x.rank()];
        int k = 0;
        for (int i = 0; i < x.rank(); i++) {
            if (!reduced[i]) {
                d[k++] = x.dims[i];
            } else if (keep) {
                d[k++] = 1;
            }
        }
        return new Fact(x.elemType, Arrays.copyOf(d, k));
    }
}
