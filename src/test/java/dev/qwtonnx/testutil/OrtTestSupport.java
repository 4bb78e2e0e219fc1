package dev.qwtonnx.testutil;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Building small models by hand ({@link ModelBuilder}, the one test-model builder) and running models
 * in ONNX Runtime from bytes, with named {@link HostTensor} inputs and outputs, for equivalence tests.
 */
public final class OrtTestSupport {
    public static final int FLOAT = TensorProto.DataType.FLOAT_VALUE;
    public static final int INT64 = TensorProto.DataType.INT64_VALUE;

    private OrtTestSupport() {
    }

    /** A tensor value_info; a null {@code dims} leaves the shape (and so the rank) unstated; -1 is a named dim. */
    public static ValueInfoProto tensor(String name, int elemType, long... dims) {
        TypeProto.Tensor.Builder t = TypeProto.Tensor.newBuilder().setElemType(elemType);
        if (dims != null) {
            TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
            for (long d : dims) {
                shape.addDim(d < 0 ? TensorShapeProto.Dimension.newBuilder().setDimParam("d" + shape.getDimCount())
                        : TensorShapeProto.Dimension.newBuilder().setDimValue(d));
            }
            t.setShape(shape);
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(t)).build();
    }

    /** A float value_info with no stated shape. */
    public static ValueInfoProto anyFloat(String name) {
        return tensor(name, FLOAT, (long[]) null);
    }

    /** A default-domain node, as an exporter would write it (no provenance tag). */
    public static NodeProto node(String op, String name, List<String> inputs, List<String> outputs, AttributeProto... attrs) {
        return NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(inputs).addAllOutput(outputs)
                .addAllAttribute(Arrays.asList(attrs)).build();
    }

    /**
     * The one builder of small test models: a graph importing the default domain at {@code opset}.
     * Two styles mix freely. Methods that add a ready-made piece ({@link #input(ValueInfoProto)},
     * {@link #init(TensorProto)}, {@link #node(String, String, List, List, AttributeProto...)}) return the
     * builder, for chains; methods that make a tensor or node by name ({@link #init(String, long[], float[])},
     * {@link #randomInit}, {@link #node(String, List, String, AttributeProto...)}) return the name of what they
     * made, for wiring one node's output into the next (random weights come from the builder's seed).
     */
    public static final class ModelBuilder {
        private final GraphProto.Builder graph = GraphProto.newBuilder().setName("test");
        private final long opset;
        private final Random rnd;
        private long irVersion = 8;
        private int counter;

        public ModelBuilder(long opset) {
            this(0, opset);
        }

        /** With {@code seed} for {@link #randomInit}. */
        public ModelBuilder(long seed, long opset) {
            this.opset = opset;
            this.rnd = new Random(seed);
        }

        public ModelBuilder input(ValueInfoProto v) {
            graph.addInput(v);
            return this;
        }

        /** An input of {@code elemType} and shape {@code dims} (-1: a named dimension). */
        public ModelBuilder input(String name, int elemType, long... dims) {
            return input(tensor(name, elemType, dims));
        }

        public ModelBuilder output(ValueInfoProto v) {
            graph.addOutput(v);
            return this;
        }

        /** An output of {@code elemType} and shape {@code dims} (-1: a named dimension). */
        public ModelBuilder output(String name, int elemType, long... dims) {
            return output(tensor(name, elemType, dims));
        }

        public ModelBuilder outputs(String... floatNames) {
            for (String n : floatNames) {
                graph.addOutput(anyFloat(n));
            }
            return this;
        }

        public ModelBuilder init(TensorProto t) {
            graph.addInitializer(t);
            return this;
        }

        /** A float initializer; returns its name. */
        public String init(String name, long[] dims, float[] values) {
            graph.addInitializer(Tensors.floatTensor(name, dims, values));
            return name;
        }

        /** A float initializer of seeded random values of standard deviation {@code std}; returns its name. */
        public String randomInit(String name, double std, long... dims) {
            float[] v = new float[Math.toIntExact(HostTensor.numel(dims))];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (rnd.nextGaussian() * std);
            }
            return init(name, dims, v);
        }

        public ModelBuilder node(NodeProto n) {
            graph.addNode(n);
            return this;
        }

        public ModelBuilder node(String op, String name, List<String> inputs, List<String> outputs, AttributeProto... attrs) {
            return node(OrtTestSupport.node(op, name, inputs, outputs, attrs));
        }

        /** A node named after its op type and a counter, with one output; returns the output's name. */
        public String node(String op, List<String> inputs, String output, AttributeProto... attrs) {
            node(op, op.toLowerCase() + "_" + (counter++), inputs, List.of(output), attrs);
            return output;
        }

        public ModelBuilder irVersion(long v) {
            irVersion = v;
            return this;
        }

        public ModelProto proto() {
            return ModelProto.newBuilder().setIrVersion(irVersion).setProducerName("qwt-onnx-tests")
                    .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset)).setGraph(graph).build();
        }

        public Model build() {
            return new Model(proto());
        }
    }

    /** Gaussian floats (mean 0, deviation 1) from a seeded generator. */
    public static HostTensor randomFloats(Random r, long... shape) {
        float[] v = new float[Math.toIntExact(HostTensor.numel(shape))];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return HostTensor.ofFloats(shape, v);
    }

    /** Runs a serialized model once (all its outputs, in declaration order) in a session made from bytes. */
    public static Map<String, HostTensor> run(byte[] model, Map<String, HostTensor> inputs) {
        try {
            return runOrThrow(model, inputs, 0);
        } catch (OrtException e) {
            throw new AssertionError("ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /**
     * The same, leaving ORT's refusal to the caller (a conformance suite counts it rather than fails);
     * {@code threads} is ORT's intra-op thread count, 0 for its default.
     */
    public static Map<String, HostTensor> runOrThrow(byte[] model, Map<String, HostTensor> inputs, int threads)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            // Golden pass tests run graphs whose folded inputs are left for a later pass: ORT's warning about them is noise.
            opts.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
            if (threads > 0) {
                opts.setIntraOpNumThreads(threads);
            }
            try (OrtSession session = env.createSession(model, opts)) {
                return runSession(session, inputs);
            }
        }
    }

    /** Runs a model file (external data and all, as ORT reads it) once: all its outputs. */
    public static Map<String, HostTensor> run(java.nio.file.Path model, Map<String, HostTensor> inputs) {
        try (OrtSession session = OrtEnvironment.getEnvironment().createSession(model.toString())) {
            return runSession(session, inputs);
        } catch (OrtException e) {
            throw new AssertionError("ONNX Runtime failed on " + model + ": " + e.getMessage(), e);
        }
    }

    /** Runs an open session once: all its outputs, in declaration order. */
    public static Map<String, HostTensor> runSession(OrtSession session, Map<String, HostTensor> inputs)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Map<String, OnnxTensor> feed = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, HostTensor> e : inputs.entrySet()) {
                feed.put(e.getKey(), e.getValue().toOnnx(env));
            }
            Map<String, HostTensor> out = new LinkedHashMap<>();
            try (OrtSession.Result r = session.run(feed)) {
                for (Map.Entry<String, OnnxValue> e : r) {
                    if (!(e.getValue() instanceof OnnxTensor t)) {
                        throw new OrtException("output " + e.getKey() + " is not a tensor");
                    }
                    out.put(e.getKey(), HostTensor.fromOnnx(t));
                }
            }
            return out;
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    public static Map<String, HostTensor> run(Model model, Map<String, HostTensor> inputs) {
        return run(model.toBytes(), inputs);
    }

    /**
     * Asserts both maps hold the same outputs with the same shapes and element types, every value
     * within {@code rel}·max(1, |expected|) (so: relative for values above 1, absolute below).
     */
    public static void assertClose(Map<String, HostTensor> expected, Map<String, HostTensor> actual, double rel) {
        assertEquals(expected.keySet(), actual.keySet(), "output names");
        for (String name : expected.keySet()) {
            HostTensor e = expected.get(name);
            HostTensor a = actual.get(name);
            assertEquals(e.type(), a.type(), name + " element type");
            assertArrayEquals(e.shape(), a.shape(), name + " shape");
            float[] x = e.toFloats();
            float[] y = a.toFloats();
            double worst = 0;
            int at = -1;
            for (int i = 0; i < x.length; i++) {
                if (Float.isNaN(x[i]) != Float.isNaN(y[i])) {
                    fail(name + "[" + i + "]: " + x[i] + " vs " + y[i]);
                }
                double err = Math.abs((double) x[i] - y[i]) / Math.max(1, Math.abs(x[i]));
                if (err > worst) {
                    worst = err;
                    at = i;
                }
            }
            if (worst > rel) {
                fail(name + "[" + at + "]: expected " + x[at] + " got " + y[at] + " (error " + worst + " > " + rel + ")");
            }
        }
    }

    /** Asserts every output agrees within {@code abs} absolutely. */
    public static void assertCloseAbs(Map<String, HostTensor> expected, Map<String, HostTensor> actual, double abs) {
        assertEquals(expected.keySet(), actual.keySet(), "output names");
        for (String name : expected.keySet()) {
            float[] x = expected.get(name).toFloats();
            float[] y = actual.get(name).toFloats();
            assertArrayEquals(expected.get(name).shape(), actual.get(name).shape(), name + " shape");
            double worst = 0;
            for (int i = 0; i < x.length; i++) {
                worst = Math.max(worst, Math.abs((double) x[i] - y[i]));
            }
            assertTrue(worst <= abs, name + ": max abs difference " + worst + " > " + abs);
        }
    }

    /** Runs both models on the same inputs and asserts {@link #assertClose} on their outputs. */
    public static void assertSameOutputs(Model before, Model after, Map<String, HostTensor> inputs, double rel) {
        assertClose(run(before, inputs), run(after, inputs), rel);
    }

    /** The op types of a graph's nodes, in order. */
    public static List<String> opTypes(Model m) {
        List<String> ops = new ArrayList<>();
        for (NodeProto n : m.graph().getNodeList()) {
            ops.add(n.getOpType());
        }
        return ops;
    }

    public static long count(Model m, String op) {
        return m.graph().getNodeList().stream().filter(n -> n.getOpType().equals(op)).count();
    }
}
