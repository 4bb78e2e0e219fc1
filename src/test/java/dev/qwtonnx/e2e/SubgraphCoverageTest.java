package dev.qwtonnx.e2e;

import dev.qwtonnx.api.QwtOnnx;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Npz;
import dev.qwtonnx.cli.Main;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Layers inside subgraphs: If branches are quantized (each calibrated on the samples that take it),
 * layers inside a Loop body are quantized where they are (see LoopScanCoverageTest), and neither crashes.
 */
public class SubgraphCoverageTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    private static QuantizeRun.Result quantize(Model m, CalibrationSource calib) {
        // The coverage under test is the same on every ORT CPU target; the fidelity thresholds are
        // the full 8-bit grid's (cpu-vnni), one bit finer than the default cpu target's weights.
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant()
                .withTarget(dev.qwtonnx.target.Target.named("cpu-vnni")));
        return QwtOnnx.quantize(m, calib, o.withVerifyBetweenPasses(true), Progress.NONE, null);
    }

    private static float[] gaussian(Random r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    private static AttributeProto graphAttr(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    private static NodeProto node(String op, String name, List<String> in, List<String> out, AttributeProto... attrs) {
        return NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(in).addAllOutput(out)
                .addAllAttribute(List.of(attrs)).build();
    }

    /**
     * x[1,4,8,8] → Conv → Relu → r; If (mean(x) > threshold): then Conv(r, own weight, outer bias)
     * → Relu; else Conv(r, an outer weight, a Constant bias inside the branch) → Sigmoid;
     * → GlobalAveragePool → Flatten → Gemm → y[1,5].
     */
    public static Model ifModel(float threshold) {
        Random rnd = new Random(5);
        ModelBuilder b = new ModelBuilder(6, 13).input("x", F, 1, 4, 8, 8).output("y", F, 1, 5);
        String c = b.node("Conv", List.of("x", b.randomInit("w_top", 0.3, 6, 4, 3, 3)), "c",
                Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r = b.node("Relu", List.of(c), "r");
        String mean = b.node("ReduceMean", List.of("x"), "mean", Nodes.intAttribute("keepdims", 0));
        String cond = b.node("Greater", List.of(mean, b.init("threshold", new long[0], new float[] {threshold})), "cond");
        String outerBias = b.randomInit("b_then", 0.1, 6);
        String outerWeight = b.randomInit("w_else", 0.3, 6, 6, 3, 3);
        GraphProto thenBranch = GraphProto.newBuilder().setName("then")
                .addInitializer(Tensors.floatTensor("w_then", new long[] {6, 6, 3, 3}, gaussian(rnd, 324, 0.3)))
                .addNode(node("Conv", "then_conv", List.of(r, "w_then", outerBias), List.of("then_c"),
                        Nodes.intsAttribute("pads", 1, 1, 1, 1)))
                .addNode(node("Relu", "then_relu", List.of("then_c"), List.of("then_out")))
                .addOutput(OrtTestSupport.tensor("then_out", F, 1, 6, 8, 8)).build();
        GraphProto elseBranch = GraphProto.newBuilder().setName("else")
                .addNode(node("Constant", "else_bias_const", List.of(), List.of("else_bias"),
                        Nodes.tensorAttribute("value", Tensors.floatTensor("v", new long[] {6}, gaussian(rnd, 6, 0.1)))))
                .addNode(node("Conv", "else_conv", List.of(r, outerWeight, "else_bias"), List.of("else_c"),
                        Nodes.intsAttribute("pads", 1, 1, 1, 1)))
                .addNode(node("Sigmoid", "else_sigmoid", List.of("else_c"), List.of("else_out")))
                .addOutput(OrtTestSupport.tensor("else_out", F, 1, 6, 8, 8)).build();
        Model base = b.build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addNode(node("If", "branch", List.of(cond), List.of("picked"), graphAttr("then_branch", thenBranch),
                graphAttr("else_branch", elseBranch)));
        // An outer tensor named as the branch quantizer would name its input's scale: the branch must not reuse it.
        g.addNode(node("Identity", "clash", List.of(r), List.of("r_scale")));
        g.addNode(node("Add", "mix", List.of("picked", "r_scale"), List.of("mixed")));
        g.addNode(node("GlobalAveragePool", "pool", List.of("mixed"), List.of("pooled")));
        g.addNode(node("Flatten", "flatten", List.of("pooled"), List.of("flat")));
        g.addInitializer(Tensors.floatTensor("w_gemm", new long[] {5, 6}, gaussian(rnd, 30, 0.3)));
        g.addNode(node("Gemm", "gemm", List.of("flat", "w_gemm"), List.of("y"), Nodes.intAttribute("transB", 1)));
        return base.withGraph(g.build());
    }

    private static NodeProto ifNode(Model m) {
        return m.graph().getNodeList().stream().filter(n -> n.getOpType().equals("If")).findFirst().orElseThrow();
    }

    private static GraphProto branch(NodeProto n, String name) {
        return Nodes.attr(n, name).orElseThrow().getG();
    }

    /** Initializers and node outputs of one graph (not its subgraphs). */
    private static List<String> definedNames(GraphProto g) {
        List<String> names = new java.util.ArrayList<>();
        g.getInitializerList().forEach(t -> names.add(t.getName()));
        g.getNodeList().forEach(n -> names.addAll(n.getOutputList()));
        return names;
    }

    private static long count(GraphProto g, String op) {
        return g.getNodeList().stream().filter(n -> n.getOpType().equals(op)).count();
    }

    @Test
    void ifBranchesAreQuantizedWithTheirOwnCalibration() {
        Model m = ifModel(0.2f);
        CalibrationSource calib = TestModels.gaussian("x", 3, 24, new long[] {1, 4, 8, 8});
        QuantizeRun.Result r = quantize(m, calib);
        ModelChecker.checkForRuntime(r.model());
        assertEquals(2, r.plan().layers().size(), "top level: " + r.plan().rejected());
        assertEquals(2, r.ifBranches().size(), r.ifBranches().toString());
        int samples = 0;
        for (QuantizeRun.IfBranch b : r.ifBranches()) {
            assertNotNull(b.result(), b.summary());
            assertEquals(1, b.result().plan().layers().size(), b.summary());
            assertTrue(b.samples() > 0 && b.samples() < 24, "both branches taken by some samples: " + b.summary());
            samples += b.samples();
        }
        assertEquals(24, samples, "each sample calibrates exactly one branch");
        assertEquals(4, r.plan().layers().size() + r.branchLayers());

        NodeProto ifq = ifNode(r.model());
        for (String name : List.of("then_branch", "else_branch")) {
            GraphProto g = branch(ifq, name);
            assertEquals(0, g.getInputCount(), name + " keeps no lifted inputs");
            assertEquals(1, count(g, "Conv"), name);
            assertTrue(count(g, "DequantizeLinear") >= 3 && count(g, "QuantizeLinear") >= 1, name + ": " + g.getNodeList());
        }
        Set<String> outer = new HashSet<>(definedNames(r.model().graph()));
        for (String name : List.of("then_branch", "else_branch")) {
            for (String inner : definedNames(branch(ifq, name))) {
                assertTrue(outer.add(inner), "'" + inner + "' in " + name + " is also defined elsewhere");
            }
        }
        // The outer weight only the else branch read is now inside it as int8; the float one is gone.
        assertTrue(r.model().graph().getInitializerList().stream().noneMatch(t -> t.getName().equals("w_else")));

        Model optimized = OrtKernels.optimized(r.model());
        Map<String, Integer> ops = OrtKernels.opCounts(optimized);
        assertEquals(4, OrtKernels.count(ops, OrtKernels.INTEGER_OPS), "integer kernels at all depths: " + ops);
        NodeProto ifo = ifNode(optimized);
        for (String name : List.of("then_branch", "else_branch")) {
            assertEquals(1, count(branch(ifo, name), "QLinearConv"), name + " in ORT: " + branch(ifo, name).getNodeList());
        }
        for (Fidelity.OutputFidelity f : Fidelity.measureOnGrid(r.prepared(), r.model(), calib, Progress.NONE)) {
            assertTrue(f.minSqnrDb() > 44, "min SQNR below 44 dB: " + f);
        }
    }

    /**
     * An accuracy target reaches the layers inside If branches: quantized by runs of their own after the top-level
     * search, they are returned to float a branch at a time, measured on the whole model, within the target's limit.
     */
    @Test
    void anAccuracyTargetReturnsQuantizedBranchesToFloat() {
        Model m = ifModel(0.2f);
        CalibrationSource calib = TestModels.gaussian("x", 3, 24, new long[] {1, 4, 8, 8});
        // Every layer may return (4): only the float model itself reaches 150 dB.
        QuantizeRun.Result all = quantize(m, calib, new dev.qwtonnx.run.AccuracyOptions(
                List.of(new dev.qwtonnx.run.AccuracyOptions.Goal("sqnr", null, 150)), false, 4));
        assertEquals(2, all.ifBranches().size());
        for (QuantizeRun.IfBranch b : all.ifBranches()) {
            assertNull(b.result(), b.summary());
            assertTrue(b.summary().contains("left in float: returned to float by the accuracy target (its 1 quantized "
                    + "layer together)"), b.summary());
        }
        for (String name : List.of("then_branch", "else_branch")) {
            assertEquals(0, count(branch(ifNode(all.model()), name), "DequantizeLinear"), name);
        }
        for (Fidelity.OutputFidelity f : Fidelity.measure(all.prepared(), all.model(), calib, Progress.NONE)) {
            assertTrue(f.minSqnrDb() >= 150, "the target holds: " + f);
        }
        // At most one layer back to float: one branch returns, the other stays quantized.
        QuantizeRun.Result one = quantize(m, calib, new dev.qwtonnx.run.AccuracyOptions(
                List.of(new dev.qwtonnx.run.AccuracyOptions.Goal("sqnr", null, 150)), false, 1));
        assertEquals(1, one.ifBranches().stream().filter(b -> b.result() == null).count(), one.ifBranches().toString());
        assertEquals(1, one.ifBranches().stream().filter(b -> b.result() != null).count(), one.ifBranches().toString());
    }

    private static QuantizeRun.Result quantize(Model m, CalibrationSource calib, dev.qwtonnx.run.AccuracyOptions target) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant()
                .withTarget(dev.qwtonnx.target.Target.named("cpu-vnni"))).withAccuracy(target);
        return QwtOnnx.quantize(m, calib, o.withVerifyBetweenPasses(true), Progress.NONE, null);
    }

    @Test
    void aBranchNoSampleTakesStaysFloatWithAReason() {
        Model m = ifModel(100f);
        CalibrationSource calib = TestModels.gaussian("x", 3, 8, new long[] {1, 4, 8, 8});
        QuantizeRun.Result r = quantize(m, calib);
        QuantizeRun.IfBranch then = r.ifBranches().stream().filter(b -> b.branch().equals("then_branch")).findFirst()
                .orElseThrow();
        assertNull(then.result());
        assertTrue(then.summary().contains("never taken"), then.summary());
        assertEquals(1, count(branch(ifNode(r.model()), "then_branch"), "Conv"));
        assertEquals(0, count(branch(ifNode(r.model()), "then_branch"), "DequantizeLinear"));
        assertEquals(1, r.branchLayers());
        Model optimized = OrtKernels.optimized(r.model());
        assertEquals(1, count(branch(ifNode(optimized), "else_branch"), "QLinearConv"));
    }

    /**
     * t[1,S,8] → If (mean(t) > 0.2): then MatMul(t, W) + outer bias (its float constant is what
     * CWAC folds into); else MatMul(t, W2); the outer bias is also read at the top level.
     */
    static Model ifMatMulModel() {
        Random rnd = new Random(8);
        ModelBuilder b = new ModelBuilder(7, 13).input("t", F, 1, -1, 8).output("y", F, 1, -1, 8);
        String mean = b.node("ReduceMean", List.of("t"), "mean", Nodes.intAttribute("keepdims", 0));
        String cond = b.node("Greater", List.of(mean, b.init("threshold", new long[0], new float[] {0.2f})), "cond");
        String bias = b.randomInit("outer_bias", 0.2, 8);
        GraphProto thenBranch = GraphProto.newBuilder().setName("then")
                .addInitializer(Tensors.floatTensor("w_a", new long[] {8, 8}, gaussian(rnd, 64, 0.4)))
                .addNode(node("MatMul", "then_mm", List.of("t", "w_a"), List.of("then_m")))
                .addNode(node("Add", "then_add", List.of("then_m", bias), List.of("then_out")))
                .addOutput(OrtTestSupport.tensor("then_out", F, 1, -1, 8)).build();
        GraphProto elseBranch = GraphProto.newBuilder().setName("else")
                .addInitializer(Tensors.floatTensor("w_b", new long[] {8, 8}, gaussian(rnd, 64, 0.4)))
                .addNode(node("MatMul", "else_mm", List.of("t", "w_b"), List.of("else_out")))
                .addOutput(OrtTestSupport.tensor("else_out", F, 1, -1, 8)).build();
        Model base = b.build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addNode(node("If", "branch", List.of(cond), List.of("picked"), graphAttr("then_branch", thenBranch),
                graphAttr("else_branch", elseBranch)));
        g.addNode(node("Add", "plus_bias", List.of("picked", bias), List.of("y")));
        return base.withGraph(g.build());
    }

    @Test
    void onlyBranchLayersAndAnOuterBiasFoldedIntoABranchCopy() {
        Model m = ifMatMulModel();
        java.util.List<dev.qwtonnx.calib.data.Sample> samples = new java.util.ArrayList<>();
        Random rnd = new Random(2);
        for (int i = 0; i < 16; i++) {
            long len = 3 + i % 4;
            float[] v = gaussian(rnd, (int) len * 8, 1);
            float shift = i % 2 == 0 ? 0.6f : -0.2f; // half the samples take each branch
            for (int k = 0; k < v.length; k++) {
                v[k] += shift;
            }
            samples.add(new dev.qwtonnx.calib.data.Sample("s" + i,
                    Map.of("t", dev.qwtonnx.model.HostTensor.ofFloats(new long[] {1, len, 8}, v))));
        }
        CalibrationSource calib = dev.qwtonnx.calib.data.CalibrationSources.ofList(samples);
        QuantizeRun.Result r = quantize(m, calib);
        assertEquals(0, r.plan().layers().size());
        assertEquals(2, r.branchLayers(), r.ifBranches().toString());
        QuantizeRun.IfBranch then = r.ifBranches().stream().filter(b -> b.branch().equals("then_branch")).findFirst()
                .orElseThrow();
        assertEquals(8, then.samples());
        assertFalse(then.result().compensation().fits().get("then_mm").isIdentity());
        // The outer bias keeps its values for the top-level Add; the branch reads its own compensated copy.
        TensorProto outer = r.model().graph().getInitializerList().stream()
                .filter(t -> t.getName().equals("outer_bias")).findFirst().orElseThrow();
        assertEquals(m.graph().getInitializerList().stream().filter(t -> t.getName().equals("outer_bias")).findFirst()
                .orElseThrow(), outer);
        NodeProto add = branch(ifNode(r.model()), "then_branch").getNodeList().stream()
                .filter(n -> n.getName().equals("then_add")).findFirst().orElseThrow();
        assertFalse(add.getInputList().contains("outer_bias"), "the branch's Add still reads the outer bias: " + add);
        Model optimized = OrtKernels.optimized(r.model());
        assertEquals(2, OrtKernels.count(OrtKernels.opCounts(optimized), OrtKernels.INTEGER_OPS),
                OrtKernels.opCounts(optimized).toString());
        for (Fidelity.OutputFidelity f : Fidelity.measureOnGrid(r.prepared(), r.model(), calib, Progress.NONE)) {
            assertTrue(f.minSqnrDb() > 40.5, "min SQNR below 40.5 dB: " + f);
        }
    }

    /** x[1,16] → MatMul → h; Loop 3 times: v = Tanh(MatMul(v, W_loop)); → MatMul → y. */
    static Model loopModel() {
        ModelBuilder b = new ModelBuilder(9, 13).input("x", F, 1, 16).output("y", F, 1, 8);
        String h = b.node("MatMul", List.of("x", b.randomInit("w_in", 0.3, 16, 16)), "h");
        String wLoop = b.randomInit("w_loop", 0.3, 16, 16);
        Model base = b.build();
        GraphProto body = GraphProto.newBuilder().setName("body")
                .addInput(OrtTestSupport.tensor("i", TensorProto.DataType.INT64_VALUE))
                .addInput(OrtTestSupport.tensor("c_in", TensorProto.DataType.BOOL_VALUE))
                .addInput(OrtTestSupport.tensor("v", F, 1, 16))
                .addNode(node("Identity", "body_cond", List.of("c_in"), List.of("c_out")))
                .addNode(node("MatMul", "body_matmul", List.of("v", wLoop), List.of("vm")))
                .addNode(node("Tanh", "body_tanh", List.of("vm"), List.of("v_next")))
                .addOutput(OrtTestSupport.tensor("c_out", TensorProto.DataType.BOOL_VALUE))
                .addOutput(OrtTestSupport.tensor("v_next", F, 1, 16)).build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addInitializer(Tensors.int64Tensor("trips", new long[0], new long[] {3}));
        g.addNode(node("Loop", "loop", List.of("trips", "", h), List.of("looped"), graphAttr("body", body)));
        g.addInitializer(Tensors.floatTensor("w_out", new long[] {16, 8}, gaussian(new Random(4), 128, 0.3)));
        g.addNode(node("MatMul", "out", List.of("looped", "w_out"), List.of("y")));
        return base.withGraph(g.build());
    }

    @Test
    void layersInsideALoopBodyAreQuantizedThere() {
        Model m = loopModel();
        CalibrationSource calib = TestModels.gaussian("x", 2, 12, new long[] {1, 16});
        QuantizeRun.Result r = quantize(m, calib);
        assertEquals(2, r.plan().layers().size());
        assertTrue(r.plan().rejected().isEmpty(), r.plan().rejected().toString());
        assertEquals(1, r.loopLayers(), r.loopBodies().toString());
        // The body reads its own int8 copy; the float weight it shared scope with is gone.
        assertTrue(r.model().graph().getInitializerList().stream().noneMatch(t -> t.getName().equals("w_loop")));
        Model optimized = OrtKernels.optimized(r.model());
        assertEquals(3, OrtKernels.count(OrtKernels.opCounts(optimized), OrtKernels.INTEGER_OPS),
                OrtKernels.opCounts(optimized).toString());
        for (Fidelity.OutputFidelity f : Fidelity.measureOnGrid(r.prepared(), r.model(), calib, Progress.NONE)) {
            assertTrue(f.minSqnrDb() > 26.5, "min SQNR below 26.5 dB: " + f);
        }
    }

    private static String cliSummary(Path dir, Model m, long[] shape, int samples) {
        Path model = dir.resolve("in.onnx");
        ModelIO.save(m, model, null);
        Path calib = dir.resolve("calib");
        int i = 0;
        for (dev.qwtonnx.calib.data.Sample s : TestModels.gaussian("x", 1, samples, shape)) {
            try {
                java.nio.file.Files.createDirectories(calib);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            Npz.write(calib.resolve("s" + (i++) + ".npz"), s.inputs());
        }
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new String[] {model.toString(), dir.resolve("out.onnx").toString(), "--calib",
            calib.toString(), "--no-report", "--holdout", "0", "--keep-slow-int8"}, new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        return out.toString();
    }

    @Test
    void theSummaryListsBranchesAndLoopBodies(@TempDir Path tmp) throws Exception {
        Path ifDir = java.nio.file.Files.createDirectory(tmp.resolve("if"));
        String ifs = cliSummary(ifDir, ifModel(100f), new long[] {1, 4, 8, 8}, 6);
        // Two layers at the top level and the branch's one: the count includes what the branch compensated.
        assertTrue(ifs.contains("quantized 3 layers (1 left in float), compensated 3 (cwac)"), ifs);
        assertTrue(ifs.contains("If node 'branch' then_branch: left in float: never taken on the calibration data"), ifs);
        assertTrue(ifs.contains("If node 'branch' else_branch (6 calibration samples): quantized 1 layer,"), ifs);
        assertTrue(ifs.contains("ORT integer kernels: 3 for 3 quantized layers"), ifs);
        // verify counts the branch's layer, which no run can measure per layer.
        StringWriter vout = new StringWriter();
        StringWriter verr = new StringWriter();
        int code = Main.run(new String[] {"verify", ifDir.resolve("in.onnx").toString(), ifDir.resolve("out.onnx").toString(),
            "--data", ifDir.resolve("calib").toString(), "--runs", "0"}, new PrintWriter(vout, true), new PrintWriter(verr, true));
        assertEquals(0, code, verr.toString());
        assertTrue(vout.toString().contains("layers: 2 quantized, 2 matched to the float model; 1 more inside If/Loop/Scan "
                + "subgraphs, not measured per layer"), vout.toString());
        String loop = cliSummary(java.nio.file.Files.createDirectory(tmp.resolve("loop")), loopModel(),
                new long[] {1, 16}, 6);
        assertTrue(loop.contains("quantized 3 layers (0 left in float)"), loop);
        assertTrue(loop.contains("Loop node 'loop' body: quantized 1 layer calibrated over all iterations, compensated"),
                loop);
        assertTrue(loop.contains("ORT integer kernels: 3 for 3 quantized layers"), loop);
    }
}
