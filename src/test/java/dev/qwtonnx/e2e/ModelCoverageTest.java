package dev.qwtonnx.e2e;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.ChannelFit;
import dev.qwtonnx.cwac.QdqLayer;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.quant.QuantMath;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Models that are not tidy, quantized end to end: weights behind Identity/Cast/Reshape/Transpose,
 * weights shared by several layers, and graph hygiene (duplicate node names, stale value_info,
 * unused initializers, inputs shadowing initializers, dynamic dimensions, custom domains). Each
 * output must load in ORT, run its layers as integer kernels, and stay close to the float model.
 */
class ModelCoverageTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    private static QuantizeRun.Result quantize(Model m, CalibrationSource calib) {
        // The coverage under test is the same on every ORT CPU target; the fidelity thresholds are
        // the full 8-bit grid's (cpu-vnni), one bit finer than the default cpu target's weights.
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant()
                .withTarget(dev.qwtonnx.target.Target.named("cpu-vnni")));
        return QwtOnnx.quantize(m, calib, o.withVerifyBetweenPasses(true), Progress.NONE, null);
    }

    /**
     * ORT runs {@code layers} integer kernels and no float layer reading a DequantizeLinear; every output's
     * worst-sample SQNR stays above {@code minSqnrDb}, set just below the figure each test measures.
     */
    private static void assertQuantizedAndClose(QuantizeRun.Result r, int layers, CalibrationSource data, double minSqnrDb) {
        assertEquals(layers, r.plan().layers().size(), "planned layers; left in float: " + r.plan().rejected());
        Model optimized = OrtKernels.optimized(r.model());
        Map<String, Integer> ops = OrtKernels.opCounts(optimized);
        assertEquals(layers, OrtKernels.count(ops, OrtKernels.INTEGER_OPS), "integer kernels in " + ops);
        assertEquals(List.of(), OrtKernels.unfusedLayers(optimized));
        for (Fidelity.OutputFidelity f : Fidelity.measureOnGrid(r.prepared(), r.model(), data, Progress.NONE)) {
            assertTrue(f.minSqnrDb() > minSqnrDb, "min SQNR below " + minSqnrDb + " dB: " + f);
        }
    }

    private static TensorProto fp16(String name, long[] dims, float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putShort(ai.onnxruntime.platform.Fp16Conversions.floatToFp16(x));
        }
        b.flip();
        return new HostTensor(DataType.FLOAT16, dims, b).toProto(name);
    }

    private static float[] gaussian(java.util.Random r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    /**
     * Conv weight = Reshape(Identity(flat initializer)); MatMul weight = Transpose(Cast(Constant of
     * float16)); Gemm weight = Transpose(initializer) read with transB=0.
     */
    static Model hiddenWeights() {
        java.util.Random rnd = new java.util.Random(21);
        ModelBuilder b = new ModelBuilder(4, 13).input("x", F, 1, 4, 8, 8).output("y", F, 1, 5);
        String flat = b.init("w_conv_flat", new long[] {8, 4 * 3 * 3}, gaussian(rnd, 8 * 4 * 3 * 3, 0.3));
        String shape = "w_conv_shape";
        GraphProto.Builder extra = GraphProto.newBuilder();
        extra.addInitializer(Tensors.int64Tensor(shape, new long[] {4}, new long[] {0, -1, 3, 3}));
        String id = b.node("Identity", List.of(flat), "w_conv_id");
        String wConv = b.node("Reshape", List.of(id, shape), "w_conv");
        String c = b.node("Conv", List.of("x", wConv), "c", Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r = b.node("Relu", List.of(c), "r");
        String p = b.node("GlobalAveragePool", List.of(r), "p");
        String f = b.node("Flatten", List.of(p), "f");
        // [12, 8] float16 constant → float → transposed to the MatMul's [8, 12].
        b.node("Constant", List.of(), "w_mm_half",
                Nodes.tensorAttribute("value", fp16("unused_name", new long[] {12, 8}, gaussian(rnd, 96, 0.3))));
        String cast = b.node("Cast", List.of("w_mm_half"), "w_mm_float", Nodes.intAttribute("to", F));
        String wMm = b.node("Transpose", List.of(cast), "w_mm");
        String m = b.node("MatMul", List.of(f, wMm), "m");
        String wG = b.node("Transpose", List.of(b.randomInit("w_gemm_t", 0.3, 5, 12)), "w_gemm",
                Nodes.intsAttribute("perm", 1, 0));
        b.node("Gemm", List.of(m, wG, b.randomInit("b_gemm", 0.1, 5)), "y");
        Model built = b.build();
        return built.withGraph(built.graph().toBuilder().addAllInitializer(extra.getInitializerList()).build());
    }

    @Test
    void weightsBehindIdentityCastReshapeTransposeAreFoldedAndQuantized() {
        Model m = hiddenWeights();
        CalibrationSource calib = TestModels.gaussian("x", 3, 16, new long[] {1, 4, 8, 8});
        QuantizeRun.Result r = quantize(m, calib);
        for (NodeProto n : r.prepared().graph().getNodeList()) {
            assertFalse(Set.of("Identity", "Cast", "Reshape", "Transpose", "Constant").contains(n.getOpType()),
                    "left unfolded: " + Nodes.describe(n));
        }
        Set<String> inits = new HashSet<>();
        r.prepared().graph().getInitializerList().forEach(t -> inits.add(t.getName()));
        assertFalse(inits.contains("w_conv_flat") || inits.contains("w_gemm_t"), "folded inputs left behind: " + inits);
        // The prepared model computes what the original did (folding is exact).
        dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs(m, r.prepared(),
                calib.iterator().next().inputs(), 1e-6);
        assertQuantizedAndClose(r, 3, calib, 40);
    }

    /**
     * One Conv weight and bias read by two Convs, one weight read by two MatMuls (on different
     * activations): each layer gets its own weight scales and bias, compensated for that layer
     * alone. The MatMuls' sequence length is dynamic, as in transformer exports (static lengths:
     * see staticShapeMatMulsWithBiasStayInteger).
     */
    static Model sharedWeights() {
        ModelBuilder b = new ModelBuilder(8, 13).input("x", F, 1, 4, 6, 6).input("t", F, 1, -1, 4)
                .output("y", F, 1, -1, 4).output("z", F, 1, 4, 6, 6);
        String w = b.randomInit("w_shared", 0.4, 4, 4, 3, 3);
        String bias = b.randomInit("b_shared", 0.2, 4);
        String c1 = b.node("Conv", List.of("x", w, bias), "c1", Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r1 = b.node("Relu", List.of(c1), "r1");
        String c2 = b.node("Conv", List.of(r1, w, bias), "c2", Nodes.intsAttribute("pads", 1, 1, 1, 1));
        b.node("Relu", List.of(c2), "z");
        String mw = b.randomInit("m_shared", 0.4, 4, 4);
        String m1 = b.node("MatMul", List.of("t", mw), "m1");
        String a1 = b.node("Add", List.of(m1, b.randomInit("m_bias", 0.1, 4)), "a1");
        String s1 = b.node("Sigmoid", List.of(a1), "s1");
        String m2 = b.node("MatMul", List.of(s1, mw), "m2");
        b.node("Add", List.of(m2, a1), "y");
        return b.build();
    }

    private static CalibrationSource twoInputs(long seed, int count) {
        java.util.Random rnd = new java.util.Random(seed);
        List<dev.qwtonnx.calib.data.Sample> samples = new java.util.ArrayList<>();
        for (int i = 0; i < count; i++) {
            long s = 3 + i % 5;
            samples.add(new dev.qwtonnx.calib.data.Sample("s" + i, Map.of(
                    "x", HostTensor.ofFloats(new long[] {1, 4, 6, 6}, gaussian(rnd, 144, 1)),
                    "t", HostTensor.ofFloats(new long[] {1, s, 4}, gaussian(rnd, (int) s * 4, 1)))));
        }
        return dev.qwtonnx.calib.data.CalibrationSources.ofList(samples);
    }

    @Test
    void sharedWeightsGetOneCompensatedCopyPerLayer() {
        Model m = sharedWeights();
        CalibrationSource calib = twoInputs(9, 24);
        QuantizeRun.Result r = quantize(m, calib);
        assertQuantizedAndClose(r, 4, calib, 35);
        GraphEditor g = new GraphEditor(r.model().graph());
        GraphEditor u = new GraphEditor(r.uncompensated().graph());
        float[] sharedConv = Tensors.floats(r.prepared().graph().getInitializerList().stream()
                .filter(t -> t.getName().equals("w_shared")).findFirst().orElseThrow());
        float[] sharedMm = Tensors.floats(r.prepared().graph().getInitializerList().stream()
                .filter(t -> t.getName().equals("m_shared")).findFirst().orElseThrow());
        Set<String> scaleNames = new HashSet<>();
        int compensated = 0;
        for (QdqLayer l : r.compensation().layers()) {
            assertTrue(scaleNames.add(l.weightScale()), "two layers share scale " + l.weightScale());
            boolean conv = l.name().equals("conv_0") || l.name().equals("conv_2");
            float[] base = conv ? QuantMath.symmetricScales(sharedConv, new long[] {4, 4, 3, 3}, 0, 127)
                    : QuantMath.symmetricScales(sharedMm, new long[] {4, 4}, 1, 127);
            float[] before = Tensors.floats(u.initializer(l.weightScale()));
            float[] after = Tensors.floats(g.initializer(l.weightScale()));
            ChannelFit fit = r.compensation().fits().get(l.name());
            for (int c = 0; c < base.length; c++) {
                // Quantized from the shared float weight, then scaled once by this layer's own gain.
                assertEquals(base[c], before[c], 1e-7f * base[c], l.name());
                assertEquals(base[c] * fit.a()[c], after[c], 1e-5 * base[c], l.name() + " channel " + c);
            }
            compensated += fit.isIdentity() ? 0 : 1;
        }
        assertEquals(4, compensated);
        assertEquals(4, scaleNames.size());
        // The two convs' fits differ, so sharing one scale initializer would have been wrong.
        assertNotEquals(r.compensation().fits().get("conv_0").a()[0], r.compensation().fits().get("conv_2").a()[0]);
        assertTrue(r.plan().notes().stream().anyMatch(s -> s.contains("'w_shared'") && s.contains("conv_0")
                && s.contains("conv_2")), r.plan().notes().toString());
        assertTrue(r.plan().notes().stream().anyMatch(s -> s.contains("'m_shared'")), r.plan().notes().toString());
    }

    /**
     * An IR-3 style export of the small CNN: every initializer also a graph input, a duplicated node
     * name, stale value_info (wrong shape and type), and an initializer nothing reads.
     */
    static Model untidyCnn() {
        Model cnn = TestModels.smallCnn(12);
        GraphProto.Builder g = cnn.graph().toBuilder();
        for (TensorProto t : cnn.graph().getInitializerList()) {
            g.addInput(OrtTestSupport.tensor(t.getName(), F, Tensors.dims(t)));
        }
        g.setNode(1, g.getNode(1).toBuilder().setName(g.getNode(0).getName()));
        g.setNode(3, g.getNode(3).toBuilder().setName(g.getNode(0).getName()));
        g.addValueInfo(OrtTestSupport.tensor("c1", F, 1, 5, 16, 16));
        g.addValueInfo(OrtTestSupport.tensor("r2", TensorProto.DataType.INT64_VALUE, 2, 2));
        g.addInitializer(Tensors.floatTensor("leftover", new long[] {3}, new float[] {1, 2, 3}));
        g.addInput(OrtTestSupport.tensor("leftover", F, 3));
        return new Model(cnn.proto().toBuilder().setIrVersion(3).setGraph(g).build());
    }

    @Test
    void untidyOldExportQuantizes() {
        Model m = untidyCnn();
        CalibrationSource calib = TestModels.gaussian("x", 4, 16, new long[] {1, 3, 16, 16});
        QuantizeRun.Result r = quantize(m, calib);
        GraphProto p = r.prepared().graph();
        assertEquals(1, p.getInputCount(), "only the real input stays an input");
        assertEquals(0, p.getValueInfoCount());
        assertTrue(p.getInitializerList().stream().noneMatch(t -> t.getName().equals("leftover")));
        Set<String> names = new HashSet<>();
        for (NodeProto n : p.getNodeList()) {
            assertTrue(names.add(n.getName()), "duplicate node name " + n.getName());
        }
        assertTrue(r.model().proto().getIrVersion() >= 4);
        ModelChecker.checkForRuntime(r.model());
        assertQuantizedAndClose(r, 4, calib, 44);
    }

    @Test
    void dynamicDimensionsCalibrate() {
        Model m = TestModels.mlp(31); // [1, S, 32], S dynamic
        CalibrationSource calib = TestModels.gaussian("x", 6, 12, new long[] {1, 5, 32}, new long[] {1, 23, 32},
                new long[] {1, 1, 32});
        assertQuantizedAndClose(quantize(m, calib), 3, calib, 35);
    }

    /**
     * A static sequence length: ORT's MatMulAddFusion would turn each MatMul + bias Add into a float
     * Gemm between Reshapes; the biases get full rank so the MatMuls stay integer. With a dynamic
     * length ORT leaves them alone, and so do we (a [N] bias keeps fusions such as BiasGelu open).
     */
    @Test
    void staticShapeMatMulsWithBiasStayInteger() {
        CalibrationSource calib = TestModels.gaussian("x", 6, 12, new long[] {1, 8, 32});
        QuantizeRun.Result fixed = quantize(TestModels.mlp(31, 8), calib);
        assertQuantizedAndClose(fixed, 3, calib, 35);
        assertEquals(List.of(3L, 3L), List.of(rank(fixed.model(), "b1"), rank(fixed.model(), "b2")));
        QuantizeRun.Result dynamic = quantize(TestModels.mlp(31), calib);
        assertEquals(List.of(1L, 1L), List.of(rank(dynamic.model(), "b1"), rank(dynamic.model(), "b2")));
        assertEquals(fixed.model().graph().getNodeCount(), dynamic.model().graph().getNodeCount(), "no node added");
    }

    /** The rank of the initializer the node reading {@code prefix}'s value holds (CWAC may rename it). */
    private static long rank(Model m, String prefix) {
        return m.graph().getInitializerList().stream().filter(t -> t.getName().startsWith(prefix))
                .mapToLong(TensorProto::getDimsCount).max().orElseThrow();
    }

    /** MatMul → com.microsoft Gelu → MatMul, and the same with an operator of a domain ORT does not know. */
    static Model withCustomOp(String domain, String op) {
        ModelBuilder b = new ModelBuilder(2, 13).input("x", F, 1, -1, 16).output("y", F, 1, -1, 8);
        String m1 = b.node("MatMul", List.of("x", b.randomInit("w1", 0.3, 16, 24)), "m1");
        String a1 = b.node("Add", List.of(m1, b.randomInit("b1", 0.1, 24)), "a1");
        String g = b.node(op, List.of(a1), "g");
        b.node("MatMul", List.of(g, b.randomInit("w2", 0.3, 24, 8)), "y");
        Model built = b.build();
        GraphProto.Builder gb = built.graph().toBuilder();
        for (int i = 0; i < gb.getNodeCount(); i++) {
            if (gb.getNode(i).getOpType().equals(op)) {
                gb.setNode(i, gb.getNode(i).toBuilder().setDomain(domain));
            }
        }
        return new Model(built.proto().toBuilder().setGraph(gb)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(1)).build());
    }

    @Test
    void customDomainOperatorsPassThrough() {
        Model m = withCustomOp("com.microsoft", "Gelu");
        CalibrationSource calib = TestModels.gaussian("x", 8, 12, new long[] {1, 7, 16});
        QuantizeRun.Result r = quantize(m, calib);
        NodeProto gelu = r.model().graph().getNodeList().stream().filter(n -> n.getOpType().equals("Gelu"))
                .findFirst().orElseThrow();
        assertEquals("com.microsoft", gelu.getDomain());
        assertQuantizedAndClose(r, 2, calib, 36);
    }

    @Test
    void unknownDomainIsAClearError() {
        Model m = withCustomOp("com.example.vendor", "Frobnicate");
        CalibrationSource calib = TestModels.gaussian("x", 8, 4, new long[] {1, 7, 16});
        QwtException e = assertThrows(QwtException.class, () -> quantize(m, calib));
        assertTrue(e.getMessage().contains("Frobnicate") && e.getMessage().contains("com.example.vendor")
                && !e.getMessage().contains("\n"), e.getMessage());
    }
}
