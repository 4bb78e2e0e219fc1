package dev.qwtonnx.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.testutil.MiniLm;
import dev.qwtonnx.testutil.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each prepare pass keeps the model's outputs (checked in ORT) while changing its form. */
class PrepareTest {
    private static final int F = 1;

    static Sample randomFloats(String input, long seed, long... shape) {
        Random r = new Random(seed);
        float[] v = new float[(int) HostTensor.numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return new Sample("random", Map.of(input, HostTensor.ofFloats(shape, v)));
    }

    /** Runs both models and asserts every output agrees within {@code tol} (absolute, relative to 1). */
    static void assertSameOutputs(Model a, Model b, Sample s, double tol) {
        List<String> outs = a.graph().getOutputList().stream().map(v -> v.getName()).toList();
        try (OrtRunner ra = new OrtRunner(a, List.of()); OrtRunner rb = new OrtRunner(b, List.of())) {
            Map<String, FloatTensor> x = ra.run(s, outs);
            Map<String, FloatTensor> y = rb.run(s, outs);
            for (String o : outs) {
                float[] p = x.get(o).data();
                float[] q = y.get(o).data();
                assertEquals(p.length, q.length, o);
                for (int i = 0; i < p.length; i++) {
                    assertTrue(Math.abs(p[i] - q[i]) <= tol * Math.max(1, Math.abs(p[i])),
                            o + "[" + i + "]: " + p[i] + " vs " + q[i]);
                }
            }
        }
    }

    static Model apply(Pass p, Model m) {
        Model out = p.run(m).model();
        ModelChecker.check(out);
        return out;
    }

    static long count(Model m, String op) {
        return m.graph().getNodeList().stream().filter(n -> n.getOpType().equals(op)).count();
    }

    @Test
    void constantsBecomeInitializers() {
        TestModels.Builder b = new TestModels.Builder(1, 13).input("x", F, 2, 4).output("y", F, 2, 3);
        float[] w = new float[12];
        for (int i = 0; i < w.length; i++) {
            w[i] = i * 0.1f - 0.5f;
        }
        b.node("Constant", List.of(), "w", Nodes.tensorAttribute("value", Tensors.floatTensor("", new long[] {4, 3}, w)));
        b.node("Constant", List.of(), "k", Nodes.floatAttribute("value_float", 2f));
        String m = b.node("MatMul", List.of("x", "w"), "m");
        b.node("Mul", List.of(m, "k"), "y");
        Model in = b.build();
        Model out = apply(new ConstantToInitializer(), in);
        assertEquals(0, count(out, "Constant"));
        assertEquals(2, out.graph().getInitializerCount());
        assertSameOutputs(in, out, randomFloats("x", 2, 2, 4), 1e-6);
    }

    /** Opset 11 operators whose form changed by 13, each checked for the same outputs in ORT. */
    @Test
    void opset11OperatorsKeepTheirMeaningAt13() {
        TestModels.Builder b = new TestModels.Builder(1, 11).input("x", F, 2, 3, 4).output("s1", F, 2, 3, 4)
                .output("s2", F, 2, 3, 4).output("u", F, 2, 1, 3, 4).output("r", F, 2, 1, 4).output("p0", F, 2, 1, 4)
                .output("p1", F, 2, 2, 4).output("d", F, 2, 3, 4).output("sq", F, 2, 3, 4).output("ls", F, 2, 3, 4);
        b.node("Softmax", List.of("x"), "s1"); // default axis 1: normalises over the flattened 3x4
        b.node("Softmax", List.of("x"), "s2", Nodes.intAttribute("axis", -1));
        b.node("LogSoftmax", List.of("x"), "ls", Nodes.intAttribute("axis", 2));
        b.node("Unsqueeze", List.of("x"), "u", Nodes.intsAttribute("axes", 1));
        b.node("Squeeze", List.of("u"), "sq", Nodes.intsAttribute("axes", 1));
        b.node("ReduceSum", List.of("x"), "r", Nodes.intsAttribute("axes", 1), Nodes.intAttribute("keepdims", 1));
        NodeProto split = NodeProto.newBuilder().setOpType("Split").setName("split").addInput("x").addOutput("p0")
                .addOutput("p1").addAttribute(Nodes.intAttribute("axis", 1)).addAttribute(Nodes.intsAttribute("split", 1, 2))
                .build();
        Model base = b.build();
        Model in = base.withGraph(base.graph().toBuilder().addNode(split).build());
        Model withDropout = in.withGraph(in.graph().toBuilder().addNode(NodeProto.newBuilder().setOpType("Dropout")
                .setName("drop").addInput("x").addOutput("d").addAttribute(Nodes.floatAttribute("ratio", 0.3f))).build());
        Model out = apply(new OpsetUpgrade(13), withDropout);
        assertEquals(13, out.opsetVersion(""));
        for (NodeProto n : out.graph().getNodeList()) {
            assertTrue(Nodes.attr(n, "axes").isEmpty() || n.getOpType().startsWith("Reduce") && !n.getOpType().equals("ReduceSum"),
                    "axes left as attribute on " + n.getName());
        }
        assertSameOutputs(withDropout, out, randomFloats("x", 3, 2, 3, 4), 1e-6);
    }

    @Test
    void unknownOperatorIsNamedInTheError() {
        TestModels.Builder b = new TestModels.Builder(1, 11).input("x", F, 1, 4).output("y", F, 1, 4);
        b.node("LpNormalization", List.of("x"), "y");
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(b.build()));
        assertTrue(e.getMessage().contains("LpNormalization node 'lpnormalization_0'"), e.getMessage());
    }

    @Test
    void modelsAtOpset13AreLeftAlone() {
        Model m = TestModels.smallCnn(1);
        assertTrue(m == new OpsetUpgrade(13).run(m).model());
    }

    private static Model convBn(boolean sharedWeight) {
        TestModels.Builder b = new TestModels.Builder(4, 13).input("x", F, 1, 3, 8, 8).output("y", F, 1, 4, 8, 8);
        String w = b.randomInit("w", 0.5, 4, 3, 3, 3);
        String c = b.node("Conv", List.of("x", w, b.randomInit("bias", 0.2, 4)), "c", Nodes.intsAttribute("pads", 1, 1, 1, 1));
        b.init("gamma", new long[] {4}, new float[] {1.5f, 0.5f, -1f, 2f});
        b.init("beta", new long[] {4}, new float[] {0.1f, -0.2f, 0.3f, 0f});
        b.init("mean", new long[] {4}, new float[] {0.2f, 0.1f, -0.3f, 0.05f});
        b.init("var", new long[] {4}, new float[] {0.9f, 1.3f, 0.4f, 2f});
        b.node("BatchNormalization", List.of(c, "gamma", "beta", "mean", "var"), "y");
        if (sharedWeight) {
            b.output("z", F, 1, 4, 8, 8);
            b.node("Conv", List.of("x", w), "z", Nodes.intsAttribute("pads", 1, 1, 1, 1));
        }
        return b.build();
    }

    @Test
    void batchNormFoldsIntoConv() {
        for (boolean shared : new boolean[] {false, true}) {
            Model in = convBn(shared);
            Model out = apply(new FoldBatchNorm(), in);
            assertEquals(0, count(out, "BatchNormalization"), "shared=" + shared);
            assertSameOutputs(in, out, randomFloats("x", 5, 1, 3, 8, 8), 1e-5);
        }
    }

    @Test
    void batchNormNotAfterConvStays() {
        TestModels.Builder b = new TestModels.Builder(4, 13).input("x", F, 1, 2, 4, 4).output("y", F, 1, 2, 4, 4);
        for (String p : List.of("g", "b", "m", "v")) {
            b.init(p, new long[] {2}, new float[] {1f, 0.5f});
        }
        String r = b.node("Relu", List.of("x"), "r");
        b.node("BatchNormalization", List.of(r, "g", "b", "m", "v"), "y");
        Model m = b.build();
        assertTrue(m == new FoldBatchNorm().run(m).model());
    }

    @Test
    @Tag("model")
    void miniLmPreparesWithoutChangingItsOutput(@TempDir Path tmp) throws Exception {
        Model in = MiniLm.floatModel(tmp);
        Model out = dev.qwtonnx.api.QwtOnnx.prepare(in, true, null);
        assertEquals(13, out.opsetVersion(""));
        Random r = new Random(9);
        long[] ids = new long[16];
        long[] ones = new long[16];
        for (int i = 0; i < 16; i++) {
            ids[i] = i == 0 ? 101 : 1000 + r.nextInt(29000);
            ones[i] = 1;
        }
        long[] shape = {1, 16};
        Sample s = new Sample("tokens", Map.of("input_ids", HostTensor.ofLongs(shape, ids), "attention_mask",
                HostTensor.ofLongs(shape, ones), "token_type_ids", HostTensor.ofLongs(shape, new long[16])));
        assertSameOutputs(in, out, s, 1e-4);
    }

    @Test
    @Tag("model")
    void ppOcrDetectorPreparesWithoutChangingItsOutput() {
        Path model = Path.of(".cache/models/ch_PP-OCRv4_det_infer.onnx");
        assumeTrue(Files.exists(model), "PP-OCRv4 detector not fetched (tools/fetch-models.sh)");
        Model in = ModelIO.load(model);
        Model out = dev.qwtonnx.api.QwtOnnx.prepare(in, true, null);
        assertEquals(0, count(out, "Constant"));
        assertTrue(count(out, "BatchNormalization") < count(in, "BatchNormalization"));
        assertSameOutputs(in, out, randomFloats("x", 8, 1, 3, 128, 128), 1e-4);
    }
}
