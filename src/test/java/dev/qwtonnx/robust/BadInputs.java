package dev.qwtonnx.robust;

import com.google.protobuf.ByteString;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * The bad-input corpus in testdata/bad: each file is the bundled example model (or its calibration
 * data) broken in one way. {@link BadInputsTest} checks the files are what this generates;
 * {@code java ... dev.qwtonnx.robust.BadInputs [dir]} rewrites them.
 *
 * <p>The example graph: x → conv_0 → c1 → relu_1 → r1 → conv_2 → c2 → relu_3 → r2 → conv_4 → c3 →
 * globalaveragepool_5 → flatten_6 → gemm_7 → logits; weights w1, w2, w3, wg; biases b1, b3, bg.
 */
public final class BadInputs {
    public static final Path DIR = Path.of("testdata/bad");

    private BadInputs() {
    }

    /** File name → bytes of every bad model of the corpus. */
    public static Map<String, byte[]> models() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        byte[] good = base().toByteArray();
        m.put("empty.onnx", new byte[0]);
        byte[] random = new byte[256];
        new Random(8).nextBytes(random);
        m.put("random.onnx", random);
        m.put("truncated.onnx", java.util.Arrays.copyOf(good, good.length / 2));
        // A calibration tensor passed where the model goes: valid protobuf, the wrong message.
        m.put("wrong-message.onnx", sample(0).toProto("x").toByteArray());
        m.put("cycle.onnx", edit(g -> setInput(g, "conv_0", 0, "r1")));
        m.put("undefined-input.onnx", edit(g -> setInput(g, "relu_3", 0, "ghost")));
        m.put("duplicate-output.onnx", edit(g -> {
            NodeProto n = g.getNode(node(g, "relu_3"));
            g.setNode(node(g, "relu_3"), n.toBuilder().setOutput(0, "r1"));
            return setInput(g, "conv_4", 0, "r1");
        }));
        m.put("unknown-domain.onnx", edit(b -> b.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.acme")
                .setVersion(1)), g -> {
            g.setNode(node(g, "relu_1"), g.getNode(node(g, "relu_1")).toBuilder().setDomain("com.acme"));
            return g;
        }));
        m.put("unknown-operator.onnx", edit(g -> {
            g.setNode(node(g, "relu_1"), g.getNode(node(g, "relu_1")).toBuilder().setOpType("Swish9000"));
            return g;
        }));
        m.put("raw-data-mismatch.onnx", edit(g -> {
            TensorProto w2 = g.getInitializer(init(g, "w2"));
            ByteString raw = w2.getRawData();
            g.setInitializer(init(g, "w2"), w2.toBuilder().setRawData(raw.substring(0, raw.size() - 4)));
            return g;
        }));
        m.put("huge-dims.onnx", edit(g -> {
            TensorProto w3 = g.getInitializer(init(g, "w3"));
            g.setInitializer(init(g, "w3"), w3.toBuilder().clearDims().addDims(1L << 24).addDims(1L << 24)
                    .addDims(1).addDims(1));
            return g;
        }));
        m.put("external-relative-escape.onnx", edit(g -> external(g, "w1", "../../etc/passwd")));
        m.put("external-absolute.onnx", edit(g -> external(g, "w1", "/etc/passwd")));
        m.put("already-quantized.onnx", edit(g -> {
            g.addInitializer(Tensors.floatScalar("x_scale", 0.05f));
            g.addInitializer(Tensors.byteTensor("x_zero_point", dev.qwtonnx.model.DataType.UINT8, new long[0],
                    new int[] {128}));
            g.addNode(0, NodeProto.newBuilder().setOpType("DequantizeLinear").setName("x_dq")
                    .addAllInput(List.of("x_q", "x_scale", "x_zero_point")).addOutput("x_dequantized"));
            g.addNode(0, NodeProto.newBuilder().setOpType("QuantizeLinear").setName("x_q")
                    .addAllInput(List.of("x", "x_scale", "x_zero_point")).addOutput("x_q"));
            return setInput(g, "conv_0", 0, "x_dequantized");
        }));
        ModelBuilder relu = new ModelBuilder(1, 13).input("x", TensorProto.DataType.FLOAT_VALUE, 1, 3, 16, 16)
                .output("y", TensorProto.DataType.FLOAT_VALUE, 1, 3, 16, 16);
        relu.node("Relu", List.of("x"), "y");
        m.put("no-layers.onnx", relu.build().toBytes());
        return m;
    }

    /** Folder → files of every bad calibration folder (ONNX test-data sets for input x[1,3,16,16]). */
    public static Map<String, Map<String, byte[]>> calibrationFolders() {
        Map<String, Map<String, byte[]>> m = new LinkedHashMap<>();
        float[] ok = sample(0).toFloats();
        m.put("calib-wrong-dtype", Map.of("test_data_set_0/input_0.pb",
                HostTensor.ofLongs(new long[] {1, 3, 16, 16}, new long[768]).toProto("x").toByteArray()));
        m.put("calib-wrong-rank", Map.of("test_data_set_0/input_0.pb",
                HostTensor.ofFloats(new long[] {3, 16, 16}, ok).toProto("x").toByteArray()));
        float[] nan = ok.clone();
        nan[100] = Float.NaN;
        m.put("calib-nan", Map.of("test_data_set_0/input_0.pb", sample(1).toProto("x").toByteArray(),
                "test_data_set_1/input_0.pb", HostTensor.ofFloats(new long[] {1, 3, 16, 16}, nan).toProto("x")
                        .toByteArray()));
        float[] inf = ok.clone();
        inf[5] = Float.NEGATIVE_INFINITY;
        m.put("calib-inf", Map.of("test_data_set_0/input_0.pb",
                HostTensor.ofFloats(new long[] {1, 3, 16, 16}, inf).toProto("x").toByteArray()));
        m.put("calib-zero-samples", Map.of("README.txt",
                "A calibration folder with no samples in it (git keeps no empty folders).\n".getBytes()));
        m.put("calib-one-sample", Map.of("test_data_set_0/input_0.pb", sample(2).toProto("x").toByteArray()));
        return m;
    }

    public static void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> e : models().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
        }
        for (Map.Entry<String, Map<String, byte[]>> folder : calibrationFolders().entrySet()) {
            for (Map.Entry<String, byte[]> f : folder.getValue().entrySet()) {
                Path p = dir.resolve(folder.getKey()).resolve(f.getKey());
                Files.createDirectories(p.getParent());
                Files.write(p, f.getValue());
            }
        }
    }

    public static void main(String[] args) throws IOException {
        write(args.length > 0 ? Path.of(args[0]) : DIR);
    }

    static ModelProto base() {
        return ExampleData.model().proto();
    }

    private static HostTensor sample(int i) {
        int k = 0;
        for (Sample s : TestModels.gaussian("x", 99, 3, new long[] {1, 3, 16, 16})) {
            if (k++ == i) {
                return s.inputs().get("x");
            }
        }
        throw new IllegalArgumentException("sample " + i);
    }

    private static byte[] edit(UnaryOperator<GraphProto.Builder> graph) {
        return edit(b -> b, graph);
    }

    private static byte[] edit(UnaryOperator<ModelProto.Builder> model, UnaryOperator<GraphProto.Builder> graph) {
        ModelProto.Builder b = model.apply(base().toBuilder());
        return b.setGraph(graph.apply(b.getGraph().toBuilder())).build().toByteArray();
    }

    private static int node(GraphProto.Builder g, String name) {
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getName().equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("no node " + name);
    }

    private static int init(GraphProto.Builder g, String name) {
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("no initializer " + name);
    }

    private static GraphProto.Builder setInput(GraphProto.Builder g, String node, int slot, String tensor) {
        int i = node(g, node);
        g.setNode(i, g.getNode(i).toBuilder().setInput(slot, tensor));
        return g;
    }

    /** Moves an initializer's payload to external data at {@code location}. */
    static GraphProto.Builder external(GraphProto.Builder g, String name, String location) {
        int i = init(g, name);
        TensorProto t = g.getInitializer(i);
        g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(location))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue("0"))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("length")
                        .setValue(Long.toString(t.getRawData().size()))));
        return g;
    }
}
