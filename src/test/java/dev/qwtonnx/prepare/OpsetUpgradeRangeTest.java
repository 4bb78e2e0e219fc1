package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ends of the opset upgrade's range: sources at opset 7 and 8, subgraphs (If/Loop/Scan bodies)
 * and targets above 13. Each rewrite is run in ONNX Runtime before and after on seeded inputs;
 * outputs must agree to 1e-6 (relative above 1, absolute below).
 */
class OpsetUpgradeRangeTest {
    private static final double TOL = 1e-6;

    static Model upgrade(Model in, long target) {
        PassResult r = new OpsetUpgrade(target).run(in);
        assertTrue(r.changed());
        Model out = r.model();
        ModelChecker.check(out);
        assertEquals(target, out.opsetVersion(""));
        assertTrue(out.proto().getIrVersion() >= OpsetUpgrade.minIrVersion(target), "ir " + out.proto().getIrVersion());
        return out;
    }

    static NodeProto nodeNamed(Model m, String name) {
        return m.graph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElseThrow();
    }

    /** Every node of a graph and of its subgraphs, depth first. */
    static void forEachNode(GraphProto g, Consumer<NodeProto> f) {
        for (NodeProto n : g.getNodeList()) {
            f.accept(n);
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    forEachNode(a.getG(), f);
                }
                a.getGraphsList().forEach(s -> forEachNode(s, f));
            }
        }
    }

    static void forEachGraph(GraphProto g, Consumer<GraphProto> f) {
        f.accept(g);
        forEachNode(g, n -> n.getAttributeList().stream().filter(AttributeProto::hasG).forEach(a -> f.accept(a.getG())));
    }

    static AttributeProto floats(String name, float... v) {
        AttributeProto.Builder a = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOATS);
        for (float f : v) {
            a.addFloats(f);
        }
        return a.build();
    }

    static AttributeProto graph(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    static HostTensor bool(boolean v) {
        return new HostTensor(DataType.BOOL, new long[0], ByteBuffer.wrap(new byte[] {(byte) (v ? 1 : 0)}));
    }

    static HostTensor positive(Random r, long... shape) {
        float[] v = randomFloats(r, shape).toFloats();
        for (int i = 0; i < v.length; i++) {
            v[i] = Math.abs(v[i]) + 0.5f;
        }
        return HostTensor.ofFloats(shape, v);
    }

    /** Upsample at 7/8 holds its scales in an attribute; it becomes Resize-13 with them as an input. */
    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8})
    void upsampleWithScalesAttributeBecomesResize(long opset) {
        Model in = new ModelBuilder(opset).input(tensor("x", FLOAT, 1, 2, 3, 4)).outputs("n", "l")
                .node("Upsample", "up_nearest", List.of("x"), List.of("n"), floats("scales", 1, 1, 2, 3))
                .node("Upsample", "up_linear", List.of("x"), List.of("l"), Nodes.stringAttribute("mode", "linear"),
                        floats("scales", 1, 1, 1.5f, 2.5f))
                .build();
        Model out = upgrade(in, 13);
        assertEquals(0, count(out, "Upsample"));
        assertEquals(3, nodeNamed(out, "up_linear").getInputCount());
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(opset), 1, 2, 3, 4)), TOL);
    }

    /**
     * BatchNormalization before 9 had {@code spatial}: spatial (the default) just loses the
     * attribute; non-spatial, with parameters per element of C×H×W, runs on the input flattened to
     * 2-D.
     */
    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8})
    void batchNormalizationLosesSpatial(long opset) {
        Random r = new Random(opset);
        ModelBuilder b = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3, 4, 5)).outputs("y_default", "y_spatial",
                "y_elementwise");
        for (String p : List.of("c", "e")) {
            long[] shape = p.equals("c") ? new long[] {3} : new long[] {3, 4, 5};
            b.init(Tensors.floatTensor(p + "_scale", shape, randomFloats(r, shape).toFloats()))
                    .init(Tensors.floatTensor(p + "_bias", shape, randomFloats(r, shape).toFloats()))
                    .init(Tensors.floatTensor(p + "_mean", shape, randomFloats(r, shape).toFloats()))
                    .init(Tensors.floatTensor(p + "_var", shape, positive(r, shape).toFloats()));
        }
        List<String> c = List.of("x", "c_scale", "c_bias", "c_mean", "c_var");
        Model in = b.node("BatchNormalization", "bn_default", c, List.of("y_default"))
                .node("BatchNormalization", "bn_spatial", c, List.of("y_spatial"), Nodes.intAttribute("spatial", 1))
                .node("BatchNormalization", "bn_elementwise", List.of("x", "e_scale", "e_bias", "e_mean", "e_var"),
                        List.of("y_elementwise"), Nodes.intAttribute("spatial", 0), Nodes.floatAttribute("epsilon", 1e-3f))
                .build();
        Model out = upgrade(in, 13);
        forEachNode(out.graph(), n -> assertTrue(Nodes.attr(n, "spatial").isEmpty(), n.getName()));
        assertEquals(1, count(out, "Flatten"));
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(r, 2, 3, 4, 5)), TOL);
    }

    /** The body of a Scan-8: state s, scan elements a and b; s' = s + a·b, scan output s' with a leading 1. */
    static GraphProto scanBody() {
        return GraphProto.newBuilder().setName("body")
                .addInput(tensor("s", FLOAT, 3)).addInput(tensor("a", FLOAT, 3)).addInput(tensor("b", FLOAT, 3))
                .addOutput(tensor("s_next", FLOAT, 3)).addOutput(tensor("row", FLOAT, 1, 3))
                .addNode(OrtTestSupport.node("Mul", "mul", List.of("a", "b"), List.of("ab")))
                .addNode(OrtTestSupport.node("Add", "add", List.of("s", "ab"), List.of("s_next")))
                .addNode(OrtTestSupport.node("Unsqueeze", "unsq", List.of("s_next"), List.of("row"),
                        Nodes.intsAttribute("axes", 0)))
                .build();
    }

    /**
     * Scan-8 scans a batch of sequences (batch axis 0, sequence axis 1); from 9 Scan has no batch
     * axis, so it becomes a Scan over the batch around a Scan-9 over the sequence, and its body's
     * opset-8 Unsqueeze is upgraded too.
     */
    @Test
    void scan8BecomesAScanOverTheBatch() {
        Model in = new ModelBuilder(8).input(tensor("s0", FLOAT, 2, 3)).input(tensor("xa", FLOAT, 2, 4, 3))
                .input(tensor("xb", FLOAT, 2, 4, 3)).outputs("s_final", "rows")
                .node("Scan", "scan", List.of("", "s0", "xa", "xb"), List.of("s_final", "rows"), graph("body", scanBody()),
                        Nodes.intAttribute("num_scan_inputs", 2), Nodes.intsAttribute("directions", 0, 1))
                .build();
        Model out = upgrade(in, 13);
        NodeProto outer = nodeNamed(out, "scan");
        assertEquals(List.of("s0", "xa", "xb"), outer.getInputList());
        assertEquals(3, Nodes.intAttr(outer, "num_scan_inputs", 0));
        List<String> ops = new ArrayList<>();
        forEachNode(out.graph(), n -> ops.add(n.getOpType()));
        assertEquals(List.of("Scan", "Scan", "Mul", "Add", "Unsqueeze"), ops);
        forEachNode(out.graph(), n -> assertTrue(Nodes.attr(n, "axes").isEmpty() && Nodes.attr(n, "directions").isEmpty()));
        Random r = new Random(11);
        OrtTestSupport.assertSameOutputs(in, out, Map.of("s0", randomFloats(r, 2, 3), "xa", randomFloats(r, 2, 4, 3),
                "xb", randomFloats(r, 2, 4, 3)), TOL);
    }

    @Test
    void scan8SequenceLengthsAreRefused() {
        Model in = new ModelBuilder(8).input(tensor("lens", DataType.INT32.code, 2)).input(tensor("s0", FLOAT, 2, 3))
                .input(tensor("xa", FLOAT, 2, 4, 3)).input(tensor("xb", FLOAT, 2, 4, 3)).outputs("s_final", "rows")
                .node("Scan", "scan", List.of("lens", "s0", "xa", "xb"), List.of("s_final", "rows"),
                        graph("body", scanBody()), Nodes.intAttribute("num_scan_inputs", 2))
                .build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade().run(in));
        assertTrue(e.getMessage().startsWith("cannot upgrade Scan node 'scan' from opset 8 to 13: Scan-8 sequence_lens"),
                e.getMessage());
    }

    /**
     * If branches and a Loop body at opset 9 or 11 hold Squeeze/ReduceSum/Unsqueeze with axes
     * attributes, reading tensors of the enclosing graph. They are upgraded in place, the new axes
     * initializers get names unique across the whole model, and both If branches and the loop give
     * the same outputs.
     */
    @ParameterizedTest(name = "opset {0} to {1}")
    @CsvSource({"9, 13", "11, 13", "11, 18"})
    void subgraphsAreUpgraded(long opset, long target) {
        GraphProto thenBranch = GraphProto.newBuilder().setName("then").addOutput(OrtTestSupport.anyFloat("t_out"))
                .addNode(OrtTestSupport.node("Squeeze", "sq", List.of("x"), List.of("t_out"), Nodes.intsAttribute("axes", 0)))
                .build();
        GraphProto elseBranch = GraphProto.newBuilder().setName("else").addOutput(OrtTestSupport.anyFloat("e_out"))
                .addNode(OrtTestSupport.node("ReduceMean", "sq", List.of("x"), List.of("e_out"),
                        Nodes.intsAttribute("axes", 0), Nodes.intAttribute("keepdims", 0)))
                .build();
        GraphProto loopBody = GraphProto.newBuilder().setName("loop_body")
                .addInput(tensor("i", INT64)).addInput(tensor("cond_in", DataType.BOOL.code)).addInput(tensor("v", FLOAT, 3))
                .addOutput(tensor("cond_out", DataType.BOOL.code)).addOutput(tensor("v_next", FLOAT, 3))
                .addOutput(tensor("v_row", FLOAT, 1, 3))
                .addNode(OrtTestSupport.node("Identity", "keep_going", List.of("cond_in"), List.of("cond_out")))
                .addNode(OrtTestSupport.node("Add", "step", List.of("v", "x_row"), List.of("v_next")))
                .addNode(OrtTestSupport.node("Unsqueeze", "row", List.of("v_next"), List.of("v_row"),
                        Nodes.intsAttribute("axes", 0)))
                .build();
        Model in = new ModelBuilder(opset).input(tensor("x", FLOAT, 1, 3)).input(tensor("c", DataType.BOOL.code))
                .outputs("y", "v_final", "rows")
                .init(Tensors.int64Tensor("trips", new long[0], new long[] {3}))
                .init(Tensors.floatTensor("v0", new long[] {3}, new float[] {1, 2, 3}))
                .node("Squeeze", "x_row", List.of("x"), List.of("x_row"), Nodes.intsAttribute("axes", 0))
                .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", thenBranch), graph("else_branch", elseBranch))
                .node("Loop", "loop", List.of("trips", "", "v0"), List.of("v_final", "rows"), graph("body", loopBody))
                .build();
        Model out = upgrade(in, target);
        // ReduceMean keeps its axes attribute up to 17.
        forEachNode(out.graph(), n -> assertEquals(n.getOpType().equals("ReduceMean") && target < 18,
                Nodes.attr(n, "axes").isPresent(), n.getName()));
        Set<String> initializers = new HashSet<>();
        forEachGraph(out.graph(), g -> g.getInitializerList().forEach(t -> assertTrue(initializers.add(t.getName()),
                "initializer name used twice: " + t.getName())));
        // trips, v0, and the axes of x_row, of both nodes named sq, of row
        assertEquals(2 + (target >= 18 ? 4 : 3), initializers.size());
        Random r = new Random(target);
        for (boolean c : new boolean[] {true, false}) {
            OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(r, 1, 3), "c", bool(c)), TOL);
        }
    }

    @Test
    void aRefusalInsideASubgraphNamesTheNodeThatHoldsIt() {
        GraphProto branch = GraphProto.newBuilder().setName("b").addOutput(OrtTestSupport.anyFloat("o"))
                .addNode(OrtTestSupport.node("Foo", "foo", List.of("x"), List.of("o"))).build();
        Model in = new ModelBuilder(11).input(tensor("x", FLOAT, 2)).input(tensor("c", DataType.BOOL.code)).outputs("y")
                .node("If", "if", List.of("c"), List.of("y"), graph("then_branch", branch), graph("else_branch", branch))
                .build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(in));
        assertEquals("cannot upgrade Foo node 'foo' from opset 11 to 13: the upgrader does not know operator Foo"
                + " (in subgraph 'then_branch' of If node 'if')", e.getMessage());
    }

    /**
     * Above 13: the axes of ReduceMean/ReduceMax/… become an input at 18 (ReduceSum's did at 13),
     * and a Split without sizes states num_outputs; below 18 they keep their opset-13 form. The
     * model starts at 11, so it takes both steps.
     */
    @ParameterizedTest(name = "to opset {0}")
    @ValueSource(longs = {14, 17, 18, 21})
    void reduceAxesAndSplitFollowTheTarget(long target) {
        Model in = new ModelBuilder(11).input(tensor("x", FLOAT, 2, 3, 4))
                .outputs("mean", "max", "l2_all", "sum", "p0", "p1", "q0", "q1", "soft")
                .node("ReduceMean", "mean", List.of("x"), List.of("mean"), Nodes.intsAttribute("axes", 1))
                .node("ReduceMax", "max", List.of("x"), List.of("max"), Nodes.intsAttribute("axes", 0, -1),
                        Nodes.intAttribute("keepdims", 0))
                .node("ReduceL2", "l2_all", List.of("x"), List.of("l2_all"))
                .node("ReduceSum", "sum", List.of("x"), List.of("sum"), Nodes.intsAttribute("axes", 2))
                .node("Split", "split_even", List.of("x"), List.of("p0", "p1"), Nodes.intAttribute("axis", 2))
                .node("Split", "split_sizes", List.of("x"), List.of("q0", "q1"), Nodes.intAttribute("axis", 1),
                        Nodes.intsAttribute("split", 1, 2))
                .node("Softmax", "soft", List.of("x"), List.of("soft"), Nodes.intAttribute("axis", -1))
                .build();
        Model out = upgrade(in, target);
        boolean at18 = target >= 18;
        assertEquals(at18 ? 2 : 1, nodeNamed(out, "mean").getInputCount());
        assertEquals(at18, Nodes.attr(nodeNamed(out, "max"), "axes").isEmpty());
        assertEquals(1, nodeNamed(out, "l2_all").getInputCount());
        assertEquals(2, nodeNamed(out, "sum").getInputCount());
        NodeProto even = nodeNamed(out, "split_even");
        assertEquals(at18 ? 2 : 0, Nodes.intAttr(even, "num_outputs", 0));
        assertFalse(Nodes.attr(nodeNamed(out, "split_sizes"), "num_outputs").isPresent());
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(target), 2, 3, 4)), TOL);
    }

    /** RoiAlign before 16 did not shift input coordinates; from 16 it does unless told otherwise. */
    @ParameterizedTest(name = "to opset {0}")
    @ValueSource(longs = {16, 21})
    void roiAlignKeepsItsCoordinates(long target) {
        Model in = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 2, 8, 8)).outputs("y")
                .init(Tensors.floatTensor("rois", new long[] {2, 4}, new float[] {0, 0, 4, 4, 1.5f, 1, 6, 7}))
                .init(Tensors.int64Tensor("batch", new long[] {2}, new long[] {0, 0}))
                .node("RoiAlign", "roi", List.of("x", "rois", "batch"), List.of("y"), Nodes.intAttribute("output_height", 3),
                        Nodes.intAttribute("output_width", 2), Nodes.intAttribute("sampling_ratio", 2))
                .build();
        Model out = upgrade(in, target);
        assertEquals("output_half_pixel", Nodes.stringAttr(nodeNamed(out, "roi"), "coordinate_transformation_mode", ""));
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(5), 1, 2, 8, 8)), TOL);
    }

    /** GridSample's "bilinear"/"bicubic" are "linear"/"cubic" from 20; DFT's axis is an input from 20. */
    @Test
    void gridSampleModesAndDftAxisAt20() {
        Model in = new ModelBuilder(17).input(tensor("x", FLOAT, 1, 2, 4, 5)).input(tensor("grid", FLOAT, 1, 3, 2, 2))
                .input(tensor("signal", FLOAT, 2, 8, 1)).outputs("g_default", "g_cubic", "g_nearest", "spectrum")
                .node("GridSample", "g_default", List.of("x", "grid"), List.of("g_default"))
                .node("GridSample", "g_cubic", List.of("x", "grid"), List.of("g_cubic"), Nodes.stringAttribute("mode", "bicubic"))
                .node("GridSample", "g_nearest", List.of("x", "grid"), List.of("g_nearest"),
                        Nodes.stringAttribute("mode", "nearest"))
                .node("DFT", "dft", List.of("signal"), List.of("spectrum"))
                .build();
        Model out = upgrade(in, 20);
        assertEquals("linear", Nodes.stringAttr(nodeNamed(out, "g_default"), "mode", ""));
        assertEquals("cubic", Nodes.stringAttr(nodeNamed(out, "g_cubic"), "mode", ""));
        assertEquals("nearest", Nodes.stringAttr(nodeNamed(out, "g_nearest"), "mode", ""));
        NodeProto dft = nodeNamed(out, "dft");
        assertTrue(Nodes.attr(dft, "axis").isEmpty());
        assertEquals(3, dft.getInputCount());
        float[] g = randomFloats(new Random(20), 1, 3, 2, 2).toFloats();
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) Math.tanh(g[i]); // sampling positions inside the image
        }
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(21), 1, 2, 4, 5),
                "grid", HostTensor.ofFloats(new long[] {1, 3, 2, 2}, g), "signal", randomFloats(new Random(22), 2, 8, 1)), TOL);
    }

    @Test
    void operatorsThatCannotCrossTheTargetAreRefused() {
        Model groupNorm = new ModelBuilder(18).input(tensor("x", FLOAT, 1, 4, 2)).outputs("y")
                .init(Tensors.floatTensor("scale", new long[] {2}, new float[] {1, 2}))
                .init(Tensors.floatTensor("bias", new long[] {2}, new float[] {0, 1}))
                .node("GroupNormalization", "gn", List.of("x", "scale", "bias"), List.of("y"),
                        Nodes.intAttribute("num_groups", 2))
                .build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(21).run(groupNorm));
        assertTrue(e.getMessage().startsWith("cannot upgrade GroupNormalization node 'gn' from opset 18 to 21"), e.getMessage());
        assertFalse(new OpsetUpgrade(20).run(groupNorm).model().graph().getNodeList().isEmpty());

        Model upsampleAt13 = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 1, 2, 2)).outputs("y")
                .init(Tensors.floatTensor("s", new long[] {4}, new float[] {1, 1, 2, 2}))
                .node("Upsample", "up", List.of("x", "s"), List.of("y")).build();
        e = assertThrows(QwtException.class, () -> new OpsetUpgrade(17).run(upsampleAt13));
        assertTrue(e.getMessage().startsWith("cannot upgrade Upsample node 'up' from opset 13 to 17"), e.getMessage());
    }

    @Test
    void theIrVersionFollowsTheTarget() {
        for (long target : new long[] {13, 15, 19, 21}) {
            Model in = new ModelBuilder(11).irVersion(6).input(tensor("x", FLOAT, 2)).outputs("y")
                    .node("Relu", "relu", List.of("x"), List.of("y")).build();
            Model out = upgrade(in, target);
            assertEquals(target >= 21 ? 10 : target >= 19 ? 9 : target >= 15 ? 8 : 7, out.proto().getIrVersion());
        }
    }
}
