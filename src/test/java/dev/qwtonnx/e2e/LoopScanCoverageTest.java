package dev.qwtonnx.e2e;

import dev.qwtonnx.api.QwtOnnx;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Layers inside Loop and Scan bodies are quantized where they are: Q/DQ inside the body, ranges
 * measured over every iteration, and ORT runs an integer kernel inside the body.
 */
public class LoopScanCoverageTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;
    private static final int I64 = TensorProto.DataType.INT64_VALUE;
    private static final int BOOL = TensorProto.DataType.BOOL_VALUE;

    static float[] gaussian(Random r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    static AttributeProto graphAttr(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    static NodeProto node(String op, String name, List<String> in, List<String> out, AttributeProto... attrs) {
        return NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(in).addAllOutput(out)
                .addAllAttribute(List.of(attrs)).build();
    }

    /**
     * An RNN: x[1,16] → MatMul(W_in) → xw; h0 = xw; Loop {@code trips} times:
     * h = Tanh(MatMul(h, W_rec) + b_rec + xw), every h also a scan output; → MatMul(h, W_out) → y[1,8].
     * W_rec and b_rec are outer-scope constants the body reads.
     */
    public static Model rnnLoop(long trips) {
        return rnnLoop(trips, 0.3, 0f);
    }

    /**
     * The RNN with W_in of standard deviation {@code wInStd} and {@code biasOffset} added to b_rec:
     * with a small W_in and a positive offset, later states lie near +1 while the first one (xw)
     * is centred on 0, so the range over all iterations is wider than any single iteration's.
     */
    public static Model rnnLoop(long trips, double wInStd, float biasOffset) {
        ModelBuilder b = new ModelBuilder(21, 13).input("x", F, 1, 16).output("y", F, 1, 8)
                .output("states", F, trips, 1, 16);
        String xw = b.node("MatMul", List.of("x", b.randomInit("w_in", wInStd, 16, 16)), "xw");
        String wRec = b.randomInit("w_rec", 0.35, 16, 16);
        float[] bias = gaussian(new Random(6), 16, 0.2);
        for (int k = 0; k < bias.length; k++) {
            bias[k] += biasOffset;
        }
        String bRec = b.init("b_rec", new long[] {16}, bias);
        Model base = b.build();
        GraphProto body = GraphProto.newBuilder().setName("rnn_body")
                .addInput(OrtTestSupport.tensor("i", I64))
                .addInput(OrtTestSupport.tensor("c_in", BOOL))
                .addInput(OrtTestSupport.tensor("h", F, 1, 16))
                .addNode(node("Identity", "rnn_cond", List.of("c_in"), List.of("c_out")))
                .addNode(node("MatMul", "rnn_matmul", List.of("h", wRec), List.of("hm")))
                .addNode(node("Add", "rnn_bias", List.of("hm", bRec), List.of("hb")))
                .addNode(node("Add", "rnn_input", List.of("hb", xw), List.of("z")))
                .addNode(node("Tanh", "rnn_tanh", List.of("z"), List.of("h_next")))
                .addNode(node("Identity", "rnn_state", List.of("h_next"), List.of("h_scan")))
                .addOutput(OrtTestSupport.tensor("c_out", BOOL))
                .addOutput(OrtTestSupport.tensor("h_next", F, 1, 16))
                .addOutput(OrtTestSupport.tensor("h_scan", F, 1, 16)).build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addInitializer(Tensors.int64Tensor("trips", new long[0], new long[] {trips}));
        g.addNode(node("Loop", "rnn", List.of("trips", "", xw), List.of("h_last", "states"), graphAttr("body", body)));
        g.addInitializer(Tensors.floatTensor("w_out", new long[] {16, 8}, gaussian(new Random(4), 128, 0.3)));
        g.addNode(node("MatMul", "out", List.of("h_last", "w_out"), List.of("y")));
        return base.withGraph(g.build());
    }

    /**
     * The RNN with its Loop inside another: an outer Loop of {@code outer} iterations whose body
     * runs the RNN step in an inner Loop of {@code inner} iterations from the outer state, so the
     * whole computes {@code outer * inner} steps; the inner body reads W_rec, b_rec and xw from two
     * levels up.
     */
    public static Model nestedRnn(long outer, long inner, double wInStd, float biasOffset) {
        Model flat = rnnLoop(outer * inner, wInStd, biasOffset);
        NodeProto rnn = flat.graph().getNodeList().stream().filter(n -> n.getName().equals("rnn")).findFirst()
                .orElseThrow();
        GraphProto innerBody = Nodes.attr(rnn, "body").orElseThrow().getG().toBuilder().removeOutput(2)
                .removeNode(5).build();
        GraphProto outerBody = GraphProto.newBuilder().setName("outer_body")
                .addInput(OrtTestSupport.tensor("j", I64))
                .addInput(OrtTestSupport.tensor("oc_in", BOOL))
                .addInput(OrtTestSupport.tensor("ho", F, 1, 16))
                .addInitializer(Tensors.int64Tensor("inner_trips", new long[0], new long[] {inner}))
                .addNode(node("Identity", "outer_cond", List.of("oc_in"), List.of("oc_out")))
                .addNode(node("Loop", "inner_rnn", List.of("inner_trips", "", "ho"), List.of("ho_next"),
                        graphAttr("body", innerBody)))
                .addOutput(OrtTestSupport.tensor("oc_out", BOOL))
                .addOutput(OrtTestSupport.tensor("ho_next", F, 1, 16)).build();
        GraphProto.Builder g = flat.graph().toBuilder().clearOutput().addOutput(OrtTestSupport.tensor("y", F, 1, 8));
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getName().equals("rnn")) {
                g.setNode(i, node("Loop", "rnn", List.of("trips_outer", "", "xw"), List.of("h_last"),
                        graphAttr("body", outerBody)));
            }
        }
        g.addInitializer(Tensors.int64Tensor("trips_outer", new long[0], new long[] {outer}));
        return flat.withGraph(g.build());
    }

    /**
     * The RNN unrolled: the same initializers, {@code steps} copies of the body in a flat graph;
     * h_k is the state the k-th step's MatMul reads.
     */
    public static Model unrolledRnn(long steps, double wInStd, float biasOffset) {
        Model loop = rnnLoop(steps, wInStd, biasOffset);
        GraphProto.Builder g = loop.graph().toBuilder().clearNode().clearOutput()
                .addOutput(OrtTestSupport.tensor("y", F, 1, 8));
        for (int i = g.getInitializerCount() - 1; i >= 0; i--) {
            if (g.getInitializer(i).getName().equals("trips")) {
                g.removeInitializer(i);
            }
        }
        g.addNode(loop.graph().getNode(0)); // xw = MatMul(x, w_in)
        g.addNode(node("Identity", "h_start", List.of("xw"), List.of("h_0")));
        for (int k = 0; k < steps; k++) {
            g.addNode(node("MatMul", "mm" + k, List.of("h_" + k, "w_rec"), List.of("hm_" + k)));
            g.addNode(node("Add", "bias" + k, List.of("hm_" + k, "b_rec"), List.of("hb_" + k)));
            g.addNode(node("Add", "in" + k, List.of("hb_" + k, "xw"), List.of("z_" + k)));
            g.addNode(node("Tanh", "tanh" + k, List.of("z_" + k), List.of("h_" + (k + 1))));
        }
        g.addNode(node("MatMul", "out", List.of("h_" + steps, "w_out"), List.of("y")));
        return loop.withGraph(g.build());
    }

    /**
     * x[1,8] → Loop 3 times over a state that grows by one row each iteration:
     * s' = Concat(Tanh(MatMul(s, W)), x): the MatMul's input changes shape between iterations.
     */
    public static Model growingLoop() {
        ModelBuilder b = new ModelBuilder(23, 13).input("x", F, 1, 8).output("grown", F, 4, 8);
        String w = b.randomInit("w_grow", 0.4, 8, 8);
        Model base = b.build();
        GraphProto body = GraphProto.newBuilder().setName("grow_body")
                .addInput(OrtTestSupport.tensor("gi", I64))
                .addInput(OrtTestSupport.tensor("gc_in", BOOL))
                .addInput(OrtTestSupport.tensor("s", F, -1, 8))
                .addNode(node("Identity", "grow_cond", List.of("gc_in"), List.of("gc_out")))
                .addNode(node("MatMul", "grow_matmul", List.of("s", w), List.of("sm")))
                .addNode(node("Tanh", "grow_tanh", List.of("sm"), List.of("st")))
                .addNode(node("Concat", "grow_concat", List.of("st", "x"), List.of("s_next"), Nodes.intAttribute("axis", 0)))
                .addOutput(OrtTestSupport.tensor("gc_out", BOOL))
                .addOutput(OrtTestSupport.tensor("s_next", F, -1, 8)).build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addInitializer(Tensors.int64Tensor("grow_trips", new long[0], new long[] {3}));
        g.addNode(node("Loop", "grow", List.of("grow_trips", "", "x"), List.of("grown"), graphAttr("body", body)));
        return base.withGraph(g.build());
    }

    /**
     * seq[T,2,8] → Scan over T: r = Relu(MatMul(x_t, W_body) + b_body) with W_body, b_body body
     * initializers; acc += r (state); every r also a scan output. No layer outside the body.
     */
    public static Model scanModel(int t) {
        Random rnd = new Random(13);
        ModelBuilder b = new ModelBuilder(22, 13).input("seq", F, t, 2, 8).output("acc", F, 2, 12)
                .output("ys", F, t, 2, 12);
        String acc0 = b.init("acc0", new long[] {2, 12}, new float[24]);
        Model base = b.build();
        GraphProto body = GraphProto.newBuilder().setName("scan_body")
                .addInitializer(Tensors.floatTensor("w_body", new long[] {8, 12}, gaussian(rnd, 96, 0.4)))
                .addInitializer(Tensors.floatTensor("b_body", new long[] {12}, gaussian(rnd, 12, 0.2)))
                .addInput(OrtTestSupport.tensor("acc_in", F, 2, 12))
                .addInput(OrtTestSupport.tensor("x_t", F, 2, 8))
                .addNode(node("MatMul", "scan_matmul", List.of("x_t", "w_body"), List.of("m")))
                .addNode(node("Add", "scan_bias", List.of("m", "b_body"), List.of("mb")))
                .addNode(node("Relu", "scan_relu", List.of("mb"), List.of("r")))
                .addNode(node("Add", "scan_acc", List.of("acc_in", "r"), List.of("acc_out")))
                .addOutput(OrtTestSupport.tensor("acc_out", F, 2, 12))
                .addOutput(OrtTestSupport.tensor("r", F, 2, 12)).build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addNode(node("Scan", "scan", List.of(acc0, "seq"), List.of("acc", "ys"), graphAttr("body", body),
                Nodes.intAttribute("num_scan_inputs", 1)));
        return base.withGraph(g.build());
    }

    static GraphProto body(Model m, String loop) {
        NodeProto n = m.graph().getNodeList().stream().filter(x -> x.getName().equals(loop)).findFirst().orElseThrow();
        return Nodes.attr(n, "body").orElseThrow().getG();
    }

    static long count(GraphProto g, String op) {
        return g.getNodeList().stream().filter(n -> n.getOpType().equals(op)).count();
    }

    static QuantizeRun.Result quantize(Model m, CalibrationSource calib) {
        // The coverage under test is the same on every ORT CPU target; the fidelity thresholds are
        // the full 8-bit grid's (cpu-vnni), one bit finer than the default cpu target's weights.
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant()
                .withTarget(dev.qwtonnx.target.Target.named("cpu-vnni")));
        return QwtOnnx.quantize(m, calib, o.withVerifyBetweenPasses(true), Progress.NONE, null);
    }

    /** The op types ORT's optimized body runs, for the report. */
    static List<String> ops(GraphProto g) {
        List<String> ops = new ArrayList<>();
        g.getNodeList().forEach(n -> ops.add(n.getOpType()));
        return ops;
    }

    /** Integer kernels among a graph's own nodes. */
    static long integerOps(GraphProto g) {
        return g.getNodeList().stream().filter(n -> OrtKernels.INTEGER_OPS.contains(n.getOpType())).count();
    }

    /**
     * ORT runs one integer kernel inside the body of {@code loop} and {@code total} in all, and
     * the outputs are close to the float model's ({@link #assertFaithful}).
     */
    static void assertFusedAndFaithful(QuantizeRun.Result r, String loop, int total, CalibrationSource calib,
            double meanSqnrDb) {
        Model optimized = OrtKernels.optimized(r.model());
        GraphProto optBody = body(optimized, loop);
        System.out.println("ORT's optimized body of '" + loop + "': " + ops(optBody));
        assertEquals(1, integerOps(optBody), ops(optBody).toString());
        assertEquals(total, OrtKernels.count(OrtKernels.opCounts(optimized), OrtKernels.INTEGER_OPS),
                OrtKernels.opCounts(optimized).toString());
        assertFaithful(r, calib, meanSqnrDb);
    }

    /** Every output's mean SQNR stays above {@code meanSqnrDb}, set just below the figure each test measures. */
    static void assertFaithful(QuantizeRun.Result r, CalibrationSource calib, double meanSqnrDb) {
        for (Fidelity.OutputFidelity f : Fidelity.measureOnGrid(r.prepared(), r.model(), calib, Progress.NONE)) {
            System.out.println("fidelity " + f);
            assertTrue(f.meanSqnrDb() > meanSqnrDb, "mean SQNR below " + meanSqnrDb + " dB: " + f);
        }
    }

    @Test
    void aLoopBodyMatMulIsQuantizedAndRunsAsAnIntegerKernel() {
        Model m = rnnLoop(5);
        CalibrationSource calib = TestModels.gaussian("x", 2, 16, new long[] {1, 16});
        QuantizeRun.Result r = quantize(m, calib);
        ModelChecker.checkForRuntime(r.model());
        assertEquals(2, r.plan().layers().size(), "top level");
        assertEquals(1, r.loopBodies().size(), r.loopBodies().toString());
        QuantizeRun.LoopBody lb = r.loopBodies().get(0);
        assertEquals(List.of("MatMul node 'rnn_matmul'"), lb.quantized());
        assertTrue(lb.leftFloat().isEmpty(), lb.leftFloat().toString());
        assertTrue(lb.summary().contains("compensated (cwac, one fit per channel over all iterations"), lb.summary());
        GraphProto body = body(r.model(), "rnn");
        assertEquals(1, count(body, "QuantizeLinear"), body.getNodeList().toString());
        assertEquals(3, count(body, "DequantizeLinear"), body.getNodeList().toString());
        // The int8 weight is a body initializer; the float outer weight nobody reads any more is gone.
        assertTrue(body.getInitializerList().stream().anyMatch(t -> t.getDataType() == TensorProto.DataType.INT8_VALUE));
        assertTrue(r.model().graph().getInitializerList().stream().noneMatch(t -> t.getName().equals("w_rec")));
        // The bias Add reads an int32 bias through a DQ (what lets ORT fuse the 2-D MatMul + Add into QGemm).
        assertTrue(body.getInitializerList().stream().anyMatch(t -> t.getDataType() == TensorProto.DataType.INT32_VALUE
                && t.getDimsCount() == 1 && t.getDims(0) == 16));
        assertTrue(r.model().graph().getInitializerList().stream().noneMatch(t -> t.getName().equals("b_rec")));

        assertFusedAndFaithful(r, "rnn", 3, calib, 32.5);
    }

    @Test
    void aScanBodyMatMulIsQuantizedAndRunsAsAnIntegerKernel() {
        Model m = scanModel(6);
        CalibrationSource calib = TestModels.gaussian("seq", 3, 16, new long[] {6, 2, 8});
        QuantizeRun.Result r = quantize(m, calib);
        ModelChecker.checkForRuntime(r.model());
        assertEquals(0, r.plan().layers().size());
        assertEquals(1, r.loopLayers(), r.loopBodies().toString());
        GraphProto body = body(r.model(), "scan");
        assertTrue(count(body, "QuantizeLinear") >= 1 && count(body, "DequantizeLinear") >= 2,
                body.getNodeList().toString());
        assertTrue(body.getInitializerList().stream().noneMatch(t -> t.getName().equals("w_body")),
                "the float body weight is replaced by its int8 copy");
        assertFusedAndFaithful(r, "scan", 1, calib, 40.0); // 40.47 dB measured without VNNI, above 40.5 with
    }

    @Test
    void aBodyLayerWithANonConstantWeightStaysFloatWithItsReason() {
        Model m = rnnLoop(4);
        NodeProto rnn = m.graph().getNodeList().stream().filter(n -> n.getName().equals("rnn")).findFirst().orElseThrow();
        GraphProto.Builder body = Nodes.attr(rnn, "body").orElseThrow().getG().toBuilder();
        // z' = z + h·hᵀ: a MatMul whose second input is computed in the body.
        body.setNode(4, node("Tanh", "rnn_tanh", List.of("z2"), List.of("h_next")));
        body.addNode(4, node("Add", "rnn_gram_add", List.of("z", "gram"), List.of("z2")));
        body.addNode(4, node("MatMul", "rnn_gram", List.of("h", "h_t"), List.of("gram")));
        body.addNode(4, node("Transpose", "rnn_transpose", List.of("h"), List.of("h_t")));
        GraphProto.Builder g = m.graph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getName().equals("rnn")) {
                g.setNode(i, Nodes.withAttr(rnn, graphAttr("body", body.build())));
            }
        }
        CalibrationSource calib = TestModels.gaussian("x", 8, 8, new long[] {1, 16});
        QuantizeRun.Result r = quantize(m.withGraph(g.build()), calib);
        QuantizeRun.LoopBody lb = r.loopBodies().get(0);
        assertEquals(List.of("MatMul node 'rnn_matmul'"), lb.quantized());
        assertEquals(List.of("MatMul node 'rnn_gram': its weight is not a constant (inside the body of Loop node 'rnn')"),
                lb.leftFloat());
        assertEquals(1, r.loopFloatLayers());
        assertFaithful(r, calib, 80);
    }

    @Test
    void aLoopThatNeverIteratesOnTheCalibrationDataStaysFloatWithItsReason() {
        CalibrationSource calib = TestModels.gaussian("x", 9, 4, new long[] {1, 16});
        QuantizeRun.Result r = quantize(rnnLoop(0), calib);
        QuantizeRun.LoopBody lb = r.loopBodies().get(0);
        assertTrue(lb.quantized().isEmpty(), lb.toString());
        assertEquals(List.of("MatMul node 'rnn_matmul': the body never ran on the calibration data, so it has no ranges"
                + " (inside the body of Loop node 'rnn')"), lb.leftFloat());
        assertEquals(0, count(body(r.model(), "rnn"), "DequantizeLinear"));
        assertEquals(2, r.plan().layers().size());
    }

    /** seq[T,1,3,8,8] → Scan over T: r = Relu(Conv(x_t, W, b)) (body constants); acc += r; every r a scan output. */
    static Model convScanModel(int t) {
        Random rnd = new Random(17);
        ModelBuilder b = new ModelBuilder(24, 13).input("seq", F, t, 1, 3, 8, 8).output("acc", F, 1, 4, 8, 8)
                .output("ys", F, t, 1, 4, 8, 8);
        String acc0 = b.init("acc0", new long[] {1, 4, 8, 8}, new float[256]);
        Model base = b.build();
        GraphProto body = GraphProto.newBuilder().setName("conv_scan_body")
                .addInitializer(Tensors.floatTensor("w_conv", new long[] {4, 3, 3, 3}, gaussian(rnd, 108, 0.3)))
                .addInitializer(Tensors.floatTensor("b_conv", new long[] {4}, gaussian(rnd, 4, 0.1)))
                .addInput(OrtTestSupport.tensor("cacc_in", F, 1, 4, 8, 8))
                .addInput(OrtTestSupport.tensor("img", F, 1, 3, 8, 8))
                .addNode(node("Conv", "scan_conv", List.of("img", "w_conv", "b_conv"), List.of("cv"),
                        Nodes.intsAttribute("pads", 1, 1, 1, 1)))
                .addNode(node("Relu", "scan_conv_relu", List.of("cv"), List.of("cr")))
                .addNode(node("Add", "scan_conv_acc", List.of("cacc_in", "cr"), List.of("cacc_out")))
                .addOutput(OrtTestSupport.tensor("cacc_out", F, 1, 4, 8, 8))
                .addOutput(OrtTestSupport.tensor("cr", F, 1, 4, 8, 8)).build();
        GraphProto.Builder g = base.graph().toBuilder();
        g.addNode(node("Scan", "conv_scan", List.of(acc0, "seq"), List.of("acc", "ys"), graphAttr("body", body),
                Nodes.intAttribute("num_scan_inputs", 1)));
        return base.withGraph(g.build());
    }

    @Test
    void aScanBodyConvRunsAsQLinearConv() {
        CalibrationSource calib = TestModels.gaussian("seq", 10, 12, new long[] {4, 1, 3, 8, 8});
        QuantizeRun.Result r = quantize(convScanModel(4), calib);
        assertEquals(List.of("Conv node 'scan_conv'"), r.loopBodies().get(0).quantized());
        GraphProto optBody = body(OrtKernels.optimized(r.model()), "conv_scan");
        assertEquals(1, count(optBody, "QLinearConv"), ops(optBody).toString());
        assertFusedAndFaithful(r, "conv_scan", 1, calib, 38.5);
    }
    /** {@code m} with the tensor {@code t} of the body of {@code scan} also a scan output, {@code out} (stacked). */
    static Model withScanOutput(Model m, String scan, String t, String out) {
        GraphProto.Builder g = m.graph().toBuilder();
        for (int i = 0; i < g.getNodeCount(); i++) {
            NodeProto n = g.getNode(i);
            if (n.getName().equals(scan)) {
                GraphProto b = Nodes.attr(n, "body").orElseThrow().getG().toBuilder()
                        .addOutput(dev.qwtonnx.testutil.OrtTestSupport.anyFloat(t)).build();
                g.setNode(i, Nodes.withAttr(n.toBuilder().addOutput(out).build(), graphAttr("body", b)));
            }
        }
        return m.withGraph(g.addOutput(dev.qwtonnx.testutil.OrtTestSupport.anyFloat(out)).build());
    }

    /**
     * CWAC reaches the Scan body: the fit is folded into the body's weight scale and int32 bias (no
     * node added, still QGemm), the body layer's output over all iterations becomes a·yq + b per
     * column (a and b read back from the folded initializers; ORT's QGemm takes the int32 bias
     * without its scale, so a bias refolded at a wrong scale fails here), and it is closer to the
     * float layer's than before on the calibration samples.
     */
    @Test
    void aScanBodyLayerIsCompensatedByFoldingIntoTheBodysInitializers() {
        Model m = scanModel(6);
        CalibrationSource calib = TestModels.gaussian("seq", 3, 16, new long[] {6, 2, 8});
        // The coverage under test is the same on every ORT CPU target; the fidelity thresholds are
        // the full 8-bit grid's (cpu-vnni), one bit finer than the default cpu target's weights.
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant()
                .withTarget(dev.qwtonnx.target.Target.named("cpu-vnni")));
        QuantizeRun.Result none = QwtOnnx.quantize(m, calib, o.withCwac(o.cwac().withMethod(
                dev.qwtonnx.cwac.CwacOptions.Method.NONE)), Progress.NONE, null);
        QuantizeRun.Result cwac = quantize(m, calib);
        assertTrue(none.loopBodies().get(0).summary().contains("not compensated"), none.loopBodies().toString());
        assertTrue(cwac.loopBodies().get(0).summary().contains("compensated (cwac"), cwac.loopBodies().toString());
        GraphProto nb = body(none.model(), "scan");
        GraphProto cb = body(cwac.model(), "scan");
        assertEquals(nb.getNodeList(), cb.getNodeList());
        assertEquals(ops(body(OrtKernels.optimized(none.model()), "scan")), ops(body(OrtKernels.optimized(cwac.model()), "scan")));

        dev.qwtonnx.cwac.QdqLayer l = dev.qwtonnx.cwac.QdqLayers.find(none.model().withGraph(nb)).layers().get(0);
        assertTrue(l.biasQuantized() != null && l.biasScale() != null, "int32 bias through a DequantizeLinear");
        Map<String, TensorProto> ni = new java.util.HashMap<>();
        Map<String, TensorProto> ci = new java.util.HashMap<>();
        nb.getInitializerList().forEach(t -> ni.put(t.getName(), t));
        cb.getInitializerList().forEach(t -> ci.put(t.getName(), t));
        float[] ws0 = Tensors.floats(ni.get(l.weightScale()));
        float[] ws1 = Tensors.floats(ci.get(l.weightScale()));
        long[] q0 = Tensors.longs(ni.get(l.biasQuantized()));
        long[] q1 = Tensors.longs(ci.get(l.biasQuantized()));
        float[] bs0 = Tensors.floats(ni.get(l.biasScale()));
        float[] bs1 = Tensors.floats(ci.get(l.biasScale()));
        int n = ws0.length;
        double[] a = new double[n];
        double[] b = new double[n];
        boolean moved = false;
        for (int c = 0; c < n; c++) {
            a[c] = (double) ws1[c] / ws0[c];
            b[c] = q1[c] * (double) bs1[c] - a[c] * q0[c] * (double) bs0[c];
            moved |= Math.abs(a[c] - 1) > 1e-4;
            assertEquals(l.inputScale() * ws1[c], bs1[c], 1e-6 * bs1[c], "bias scale is x_scale·w_scale'");
        }
        assertTrue(moved, "some gain was folded");

        Model fProbe = withScanOutput(none.prepared(), "scan", "mb", "mb_all");
        Model nProbe = withScanOutput(none.model(), "scan", "mb", "mb_all");
        Model cProbe = withScanOutput(cwac.model(), "scan", "mb", "mb_all");
        double errNone = 0;
        double errCwac = 0;
        for (dev.qwtonnx.calib.data.Sample smp : calib) {
            float[] yf = dev.qwtonnx.testutil.OrtTestSupport.run(fProbe, smp.inputs()).get("mb_all").toFloats();
            float[] y0 = dev.qwtonnx.testutil.OrtTestSupport.run(nProbe, smp.inputs()).get("mb_all").toFloats();
            float[] y1 = dev.qwtonnx.testutil.OrtTestSupport.run(cProbe, smp.inputs()).get("mb_all").toFloats();
            for (int i = 0; i < y0.length; i++) {
                int c = i % n;
                double expected = a[c] * y0[i] + b[c];
                double tol = 0.5 * bs1[c] * (1 + 1e-3) + 1e-5 * (1 + Math.abs(expected));
                assertEquals(expected, y1[i], tol, "element " + i);
                errNone += (y0[i] - yf[i]) * (double) (y0[i] - yf[i]);
                errCwac += (y1[i] - yf[i]) * (double) (y1[i] - yf[i]);
            }
        }
        System.out.printf("Scan body layer, calibration samples: squared error to float %.4g -> %.4g%n", errNone, errCwac);
        assertTrue(errCwac < errNone, errNone + " -> " + errCwac);
    }
}
