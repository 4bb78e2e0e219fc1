package dev.qwtonnx.testutil;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.TextFormat;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Golden tests for one pass, in the style of Closure Compiler's {@code CompilerTestCase}: a test class
 * names its pass once ({@link #pass()}) and then reads as pairs. {@link #test(Model, Model, Map...)}: this
 * graph in, that graph out. {@link #testSame(Model)}: this graph is left as it is (the same instance).
 *
 * <p>Every rewrite is also checked for what any pass promises: the output passes
 * {@link ModelChecker#checkForRuntime}; ONNX Runtime gives the same outputs on the graph before and after,
 * on the same inputs, within {@link #tolerance()}; and the pass reaches its fixed point in one run (a
 * second run changes nothing). Graphs are compared in a canonical text form ({@link #describe}): nodes
 * in order with their attributes, initializers in order by name, type, shape and values (not by how the
 * bytes are stored), inputs, outputs and value_info; a mismatch shows both texts.
 */
public abstract class PassTestCase {
    /** The pass under test; a new instance for each run (a pass holds no state between runs). */
    protected abstract Pass pass();

    /**
     * How close ORT's outputs before and after must be: every value within
     * {@code tolerance}·max(1, |before|). Zero, the default, is bit for bit.
     */
    protected double tolerance() {
        return 0;
    }

    /**
     * The pass rewrites {@code before} into exactly {@code expected}; also {@link #rewrite}'s checks.
     *
     * @param feeds the inputs ORT runs both graphs on; none: one seeded Gaussian input per float graph input
     * @return the rewritten model, for further checks
     */
    @SafeVarargs
    protected final Model test(Model before, Model expected, Map<String, HostTensor>... feeds) {
        Model after = rewrite(before, feeds);
        assertEquals(describe(expected), describe(after), "the graph after " + pass().name());
        return after;
    }

    /** The pass leaves {@code model} as it is and says so: unchanged, the same instance. */
    protected final void testSame(Model model) {
        PassResult r = pass().run(model);
        assertFalse(r.changed(), pass().name() + " reports a change");
        assertSame(model, r.model(), pass().name() + " returned another model");
    }

    /**
     * Runs the pass on {@code before} and checks what every rewrite promises, without a golden graph:
     * a change is reported, the output passes the runtime checker, ORT agrees within {@link #tolerance()},
     * and a second run changes nothing.
     */
    @SafeVarargs
    protected final Model rewrite(Model before, Map<String, HostTensor>... feeds) {
        PassResult r = pass().run(before);
        assertTrue(r.changed(), pass().name() + " reports no change");
        Model after = r.model();
        ModelChecker.checkForRuntime(after);
        for (Map<String, HostTensor> inputs : feeds.length > 0 ? List.of(feeds) : List.of(seededInputs(before))) {
            OrtTestSupport.assertClose(OrtTestSupport.run(before, inputs), OrtTestSupport.run(after, inputs), tolerance());
        }
        PassResult again = pass().run(after);
        assertFalse(again.changed(), pass().name() + " changes its own output again:\n" + describe(again.model()));
        return after;
    }

    /** Gaussian values (seeded) for each float graph input that is not an initializer; other inputs need feeds. */
    static Map<String, HostTensor> seededInputs(Model m) {
        Set<String> inits = new HashSet<>();
        m.graph().getInitializerList().forEach(t -> inits.add(t.getName()));
        Random rnd = new Random(1);
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (ValueInfoProto v : m.graph().getInputList()) {
            if (inits.contains(v.getName())) {
                continue;
            }
            TypeProto.Tensor t = v.getType().getTensorType();
            long[] dims = t.getShape().getDimList().stream().mapToLong(d -> d.hasDimValue() ? d.getDimValue() : -1).toArray();
            if (t.getElemType() != DataType.FLOAT.code || !t.hasShape() || Arrays.stream(dims).anyMatch(d -> d < 0)) {
                fail("input '" + v.getName() + "' is not a float tensor of static shape: give the test its feeds");
            }
            out.put(v.getName(), OrtTestSupport.randomFloats(rnd, dims));
        }
        return out;
    }

    /** The canonical text form graphs are compared in. */
    public static String describe(Model m) {
        StringBuilder s = new StringBuilder("ir_version ").append(m.proto().getIrVersion()).append(", opsets");
        for (OperatorSetIdProto o : m.proto().getOpsetImportList()) {
            s.append(' ').append(o.getDomain().isEmpty() ? "ai.onnx" : o.getDomain()).append(':').append(o.getVersion());
        }
        s.append('\n');
        describe(m.graph(), "", s);
        return s.toString();
    }

    private static void describe(GraphProto g, String indent, StringBuilder s) {
        for (ValueInfoProto v : g.getInputList()) {
            s.append(indent).append("input ").append(valueInfo(v)).append('\n');
        }
        for (TensorProto t : g.getInitializerList()) {
            s.append(indent).append("initializer ").append(tensor(t)).append('\n');
        }
        for (NodeProto n : g.getNodeList()) {
            s.append(indent).append(n.getDomain().isEmpty() ? "" : n.getDomain() + ".").append(n.getOpType())
                    .append(" '").append(n.getName()).append("' (").append(String.join(", ", n.getInputList()))
                    .append(") -> (").append(String.join(", ", n.getOutputList())).append(')');
            for (StringStringEntryProto e : n.getMetadataPropsList()) {
                s.append(" [").append(e.getKey()).append('=').append(e.getValue()).append(']');
            }
            s.append('\n');
            for (AttributeProto a : n.getAttributeList()) {
                s.append(indent).append("    ").append(a.getName()).append(" = ");
                if (a.getType() == AttributeProto.AttributeType.GRAPH) {
                    s.append("graph '").append(a.getG().getName()).append("'\n");
                    describe(a.getG(), indent + "        ", s);
                } else if (a.getType() == AttributeProto.AttributeType.TENSOR) {
                    s.append(tensor(a.getT())).append('\n');
                } else {
                    s.append(TextFormat.shortDebugString(a.toBuilder().clearName().build())).append('\n');
                }
            }
        }
        for (ValueInfoProto v : g.getOutputList()) {
            s.append(indent).append("output ").append(valueInfo(v)).append('\n');
        }
        for (ValueInfoProto v : g.getValueInfoList()) {
            s.append(indent).append("value_info ").append(valueInfo(v)).append('\n');
        }
    }

    private static String valueInfo(ValueInfoProto v) {
        if (!v.getType().hasTensorType()) {
            return v.getName() + ": " + TextFormat.shortDebugString(v.getType());
        }
        TypeProto.Tensor t = v.getType().getTensorType();
        StringBuilder s = new StringBuilder(v.getName()).append(": ").append(typeName(t.getElemType()));
        if (!t.hasShape()) {
            return s.append("[?]").toString();
        }
        List<String> dims = t.getShape().getDimList().stream().map(PassTestCase::dim).toList();
        return s.append(dims).toString();
    }

    private static String dim(TensorShapeProto.Dimension d) {
        return d.hasDimValue() ? Long.toString(d.getDimValue()) : d.hasDimParam() ? d.getDimParam() : "?";
    }

    private static String tensor(TensorProto t) {
        String head = t.getName() + ": " + typeName(t.getDataType()) + Arrays.toString(Tensors.dims(t));
        if (!DataType.isKnown(t.getDataType()) || Tensors.isExternal(t)) {
            return head + " " + TextFormat.shortDebugString(t);
        }
        HostTensor h = Tensors.toHost(t);
        boolean integer = h.type() != DataType.FLOAT && h.type() != DataType.DOUBLE && h.type() != DataType.FLOAT16;
        return head + " = " + (integer ? Arrays.toString(h.toLongs()) : Arrays.toString(h.toFloats()));
    }

    private static String typeName(int code) {
        return DataType.isKnown(code) ? DataType.of(code).name() : "type " + code;
    }
}
