package dev.qwtonnx.model;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.FunctionProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The essential structural rules of the ONNX checker, run before any native session sees a model
 * and on every model we write: opsets imported once for every domain used (before a session, also
 * only domains ONNX Runtime implements or the model defines as functions), unique input, output, initializer and
 * node names, each tensor produced once, nodes in topological order with every input defined,
 * initializer payloads matching their type and dims (checked without decoding them, so a huge
 * declared size costs nothing), and initializers agreeing with the graph input they feed.
 * It only reports, with one line naming the graph, node or tensor at fault; it never changes the
 * model.
 */
public final class ModelChecker {
    /** Operator domains ONNX Runtime's CPU build implements (custom-op libraries are not loaded). */
    static final Set<String> RUNTIME_DOMAINS = Set.of("", "ai.onnx.ml", Model.MICROSOFT_DOMAIN, "com.microsoft.nchwc",
            "com.microsoft.experimental", "ai.onnx.preview.training", "ai.onnx.training", "com.ms.internal.nhwc",
            "org.pytorch.aten", "com.microsoft.dml");

    private ModelChecker() {
    }

    /** The structural rules; custom-domain operators pass if the model imports their domain. */
    public static void check(Model model) {
        check(model, false);
    }

    /**
     * The structural rules, and every operator of a domain ONNX Runtime implements: what must hold
     * before a native session is created from the model.
     */
    public static void checkForRuntime(Model model) {
        check(model, true);
    }

    private static void check(Model model, boolean forRuntime) {
        ModelProto p = model.proto();
        if (p.getIrVersion() <= 0) {
            throw new QwtException("model declares IR version " + p.getIrVersion() + "; ONNX models have 1 or more");
        }
        Set<String> imported = new HashSet<>();
        for (OperatorSetIdProto o : p.getOpsetImportList()) {
            String domain = Model.isDefaultDomain(o.getDomain()) ? "" : o.getDomain();
            if (!imported.add(domain)) {
                throw new QwtException("model imports opset domain '" + o.getDomain() + "' more than once");
            }
            if (o.getVersion() <= 0) {
                throw new QwtException("model imports opset domain '" + o.getDomain() + "' at version " + o.getVersion());
            }
        }
        Set<String> functions = new HashSet<>();
        for (FunctionProto f : p.getFunctionsList()) {
            functions.add(f.getDomain() + "/" + f.getName());
        }
        new GraphCheck(imported, functions, forRuntime).graph(p.getGraph(), Set.of(), "graph '" + p.getGraph().getName() + "'");
    }

    /**
     * The number of bytes a tensor of this element type and element count holds, or -1 for strings.
     * Throws ArithmeticException when that overflows a long.
     */
    static long payloadBytes(int elemType, long numel) {
        return switch (elemType) {
            case 2, 3, 9, 17, 18, 19, 20 -> numel;                            // u8, i8, bool, float8 variants
            case 4, 5, 10, 16 -> Math.multiplyExact(2, numel);                // u16, i16, f16, bf16
            case 1, 6, 12 -> Math.multiplyExact(4, numel);                    // f32, i32, u32
            case 7, 11, 13, 14 -> Math.multiplyExact(8, numel);               // i64, f64, u64, complex64
            case 15 -> Math.multiplyExact(16, numel);                         // complex128
            case 21, 22, 23, 25, 26 -> (numel + 1) / 2;            // 4-bit types, packed two a byte
            case 8 -> -1;                                          // string
            default -> throw new IllegalArgumentException("element type " + elemType);
        };
    }

    static boolean isKnownElemType(int elemType) {
        try {
            payloadBytes(elemType, 0);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** Checks a tensor's dims and that its payload has the size they call for (external data excepted). */
    static void checkTensor(TensorProto t, String where) {
        String what = where + ": tensor '" + t.getName() + "'";
        if (!isKnownElemType(t.getDataType())) {
            throw new QwtException(what + " has unknown element type " + t.getDataType());
        }
        long numel = 1;
        for (long d : t.getDimsList()) {
            if (d < 0) {
                throw new QwtException(what + " has a negative dimension in " + t.getDimsList());
            }
            try {
                numel = Math.multiplyExact(numel, d);
            } catch (ArithmeticException e) {
                throw new QwtException(what + " declares dims " + t.getDimsList() + " whose size overflows");
            }
        }
        if (Tensors.isExternal(t)) {
            return; // ModelIO checks external payloads against the dims when it reads them.
        }
        long need;
        try {
            need = payloadBytes(t.getDataType(), numel);
        } catch (ArithmeticException e) {
            throw new QwtException(what + " declares dims " + t.getDimsList() + " whose size overflows");
        }
        if (t.hasRawData()) {
            if (need >= 0 && t.getRawData().size() != need) {
                throw new QwtException(what + " has " + t.getRawData().size() + " bytes of raw data but its dims "
                        + t.getDimsList() + " need " + need);
            }
            return;
        }
        long count;
        long expected = numel;
        switch (t.getDataType()) {
            case 1 -> count = t.getFloatDataCount();
            case 14 -> { count = t.getFloatDataCount(); expected = 2 * numel; }
            case 11 -> count = t.getDoubleDataCount();
            case 15 -> { count = t.getDoubleDataCount(); expected = 2 * numel; }
            case 7 -> count = t.getInt64DataCount();
            case 12, 13 -> count = t.getUint64DataCount();
            case 8 -> count = t.getStringDataCount();
            case 21, 22, 23, 25, 26 -> { count = t.getInt32DataCount(); expected = (numel + 1) / 2; }
            default -> count = t.getInt32DataCount();
        }
        if (count != expected) {
            throw new QwtException(what + " holds " + count + " values but its dims " + t.getDimsList() + " need "
                    + expected);
        }
    }

    /** One walk over a graph and its subgraphs; names defined in enclosing graphs are visible inside. */
    private record GraphCheck(Set<String> imported, Set<String> functions, boolean forRuntime) {
        void graph(GraphProto g, Set<String> outer, String where) {
            Set<String> defined = new HashSet<>(outer);
            Set<String> local = new HashSet<>();
            Map<String, ValueInfoProto> inputs = new HashMap<>();
            for (ValueInfoProto v : g.getInputList()) {
                if (inputs.put(v.getName(), v) != null) {
                    throw new QwtException(where + ": input name '" + v.getName() + "' is used twice");
                }
                defined.add(v.getName());
                local.add(v.getName());
            }
            Set<String> initializers = new HashSet<>();
            for (TensorProto t : g.getInitializerList()) {
                if (!initializers.add(t.getName())) {
                    throw new QwtException(where + ": initializer '" + t.getName() + "' is defined twice");
                }
                checkTensor(t, where);
                ValueInfoProto asInput = inputs.get(t.getName());
                if (asInput != null) {
                    agrees(t, asInput, where);
                }
                defined.add(t.getName());
                local.add(t.getName());
            }
            Map<String, NodeProto> producers = producers(g, where, local);
            Set<String> nodeNames = new HashSet<>();
            for (NodeProto n : g.getNodeList()) {
                node(n, where);
                if (!n.getName().isEmpty() && !nodeNames.add(n.getName())) {
                    throw new QwtException(where + ": node name '" + n.getName() + "' is used twice");
                }
                for (AttributeProto a : n.getAttributeList()) {
                    String sub = where + " / " + Nodes.describe(n) + " attribute '" + a.getName() + "'";
                    if (a.hasT()) {
                        checkTensor(a.getT(), sub);
                    }
                    for (TensorProto t : a.getTensorsList()) {
                        checkTensor(t, sub);
                    }
                    if (a.hasG()) {
                        graph(a.getG(), defined, sub);
                    }
                    for (GraphProto sg : a.getGraphsList()) {
                        graph(sg, defined, sub);
                    }
                }
                for (String in : n.getInputList()) {
                    if (!in.isEmpty() && !defined.contains(in)) {
                        throw undefined(g, n, in, producers, where);
                    }
                }
                for (String out : n.getOutputList()) {
                    if (!out.isEmpty()) {
                        defined.add(out);
                    }
                }
            }
            Set<String> outputs = new HashSet<>();
            for (ValueInfoProto v : g.getOutputList()) {
                if (!outputs.add(v.getName())) {
                    throw new QwtException(where + ": output name '" + v.getName() + "' is listed twice");
                }
                if (!defined.contains(v.getName())) {
                    throw new QwtException(where + ": graph output '" + v.getName() + "' is never produced");
                }
            }
        }

        /** Which node produces each tensor; a tensor produced twice, or over an input or initializer, is an error. */
        private static Map<String, NodeProto> producers(GraphProto g, String where, Set<String> local) {
            Map<String, NodeProto> producers = new HashMap<>();
            for (NodeProto n : g.getNodeList()) {
                for (String out : n.getOutputList()) {
                    if (out.isEmpty()) {
                        continue;
                    }
                    NodeProto other = producers.put(out, n);
                    if (other != null || local.contains(out)) {
                        throw new QwtException(where + ": tensor '" + out + "' is defined more than once (by "
                                + Nodes.describe(n) + (other == null ? " and as an input or initializer"
                                : " and " + Nodes.describe(other)) + ")");
                    }
                }
            }
            return producers;
        }

        private void node(NodeProto n, String where) {
            if (n.getOpType().isEmpty()) {
                throw new QwtException(where + ": node '" + n.getName() + "' has no operator type");
            }
            String domain = Model.isDefaultDomain(n.getDomain()) ? "" : n.getDomain();
            if (functions.contains(n.getDomain() + "/" + n.getOpType())) {
                return;
            }
            if (!imported.contains(domain)) {
                throw new QwtException(where + ": " + Nodes.describe(n) + " uses domain '" + n.getDomain()
                        + "' which the model does not import");
            }
            if (forRuntime && !RUNTIME_DOMAINS.contains(domain)) {
                throw new QwtException(where + ": " + Nodes.describe(n) + " is an operator of domain '" + n.getDomain()
                        + "', which ONNX Runtime does not implement (custom operators are not supported)");
            }
        }

        /** An undefined input: produced nowhere, produced later (out of order), or produced on a cycle. */
        private static QwtException undefined(GraphProto g, NodeProto n, String in, Map<String, NodeProto> producers,
                String where) {
            NodeProto producer = producers.get(in);
            if (producer == null) {
                return new QwtException(where + ": " + Nodes.describe(n) + " reads '" + in
                        + "', which no node, graph input or initializer defines");
            }
            List<String> cycle = cycleThrough(g, producers);
            if (!cycle.isEmpty()) {
                if (cycle.size() > 9) { // keep the message one readable line
                    int len = cycle.size();
                    cycle = List.of(String.join(" -> ", cycle.subList(0, 4)), "... (" + (len - 8) + " more)",
                            String.join(" -> ", cycle.subList(len - 4, len)));
                }
                return new QwtException(where + ": the graph has a cycle: " + String.join(" -> ", cycle));
            }
            return new QwtException(where + ": nodes are not in topological order: " + Nodes.describe(n) + " reads '"
                    + in + "' before " + Nodes.describe(producer) + " produces it");
        }

        /** Node names along one cycle (first name repeated at the end), or empty when the graph has none. */
        private static List<String> cycleThrough(GraphProto g, Map<String, NodeProto> producers) {
            Map<NodeProto, Integer> state = new IdentityHashMap<>(); // 1 on the current path, 2 done
            for (NodeProto start : g.getNodeList()) {
                if (state.containsKey(start)) {
                    continue;
                }
                // Iterative depth-first search along "reads from" edges: deep graphs must not overflow the stack.
                Deque<NodeProto> path = new ArrayDeque<>();
                Deque<Integer> next = new ArrayDeque<>();
                path.push(start);
                next.push(0);
                state.put(start, 1);
                while (!path.isEmpty()) {
                    NodeProto top = path.peek();
                    int i = next.pop();
                    if (i >= top.getInputCount()) {
                        state.put(path.pop(), 2);
                        continue;
                    }
                    next.push(i + 1);
                    NodeProto p = producers.get(top.getInput(i));
                    if (p == null) {
                        continue;
                    }
                    Integer s = state.get(p);
                    if (s == null) {
                        state.put(p, 1);
                        path.push(p);
                        next.push(0);
                    } else if (s == 1) {
                        // Down the stack each node reads from the one above it, so from the top down data flows.
                        List<String> names = new ArrayList<>();
                        for (NodeProto q : path) {
                            names.add("'" + q.getName() + "'");
                            if (q == p) {
                                break;
                            }
                        }
                        names.add(names.get(0));
                        return names;
                    }
                }
            }
            return List.of();
        }

        /** An initializer that also is a graph input (a default value) must match the input's declared type. */
        private static void agrees(TensorProto t, ValueInfoProto input, String where) {
            if (!input.hasType() || !input.getType().hasTensorType()) {
                return;
            }
            TypeProto.Tensor tt = input.getType().getTensorType();
            if (tt.getElemType() != 0 && tt.getElemType() != t.getDataType()) {
                throw new QwtException(where + ": initializer '" + t.getName() + "' has element type " + t.getDataType()
                        + " but the graph input of that name declares " + tt.getElemType());
            }
            if (!tt.hasShape()) {
                return;
            }
            List<TensorShapeProto.Dimension> dims = tt.getShape().getDimList();
            boolean ok = dims.size() == t.getDimsCount();
            for (int i = 0; ok && i < dims.size(); i++) {
                ok = !dims.get(i).hasDimValue() || dims.get(i).getDimValue() == t.getDims(i);
            }
            if (!ok) {
                throw new QwtException(where + ": initializer '" + t.getName() + "' has dims " + t.getDimsList()
                        + " but the graph input of that name declares shape " + shape(dims));
            }
        }

        private static String shape(List<TensorShapeProto.Dimension> dims) {
            String[] s = new String[dims.size()];
            for (int i = 0; i < s.length; i++) {
                TensorShapeProto.Dimension d = dims.get(i);
                s[i] = d.hasDimValue() ? Long.toString(d.getDimValue()) : d.hasDimParam() ? d.getDimParam() : "?";
            }
            return Arrays.toString(s);
        }
    }
}
