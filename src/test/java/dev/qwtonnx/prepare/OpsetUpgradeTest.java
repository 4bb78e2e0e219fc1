package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
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
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Each rewrite of the opset upgrade, on a tiny model at the old opset run in ONNX Runtime before and
 * after on seeded Gaussian inputs. The rewrites only move constants around or restate the same
 * computation, so outputs must agree to 1e-6 (relative above 1, absolute below).
 */
class OpsetUpgradeTest {
    private static final double TOL = 1e-6;

    /** Runs the upgrade, then checks the structural invariants every upgraded model must meet. */
    static Model upgrade(Model in) {
        PassResult r = new OpsetUpgrade(13).run(in);
        assertTrue(r.changed());
        Model out = r.model();
        ModelChecker.check(out);
        assertEquals(13, out.opsetVersion(""));
        assertTrue(out.proto().getIrVersion() >= 7, "ir_version " + out.proto().getIrVersion());
        return out;
    }

    static void assertEquivalent(Model in, Model out, Map<String, HostTensor> inputs) {
        OrtTestSupport.assertSameOutputs(in, out, inputs, TOL);
    }

    static NodeProto nodeNamed(Model m, String name) {
        return m.graph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElseThrow();
    }

    static boolean taggedByUpgrade(NodeProto n) {
        for (StringStringEntryProto e : n.getMetadataPropsList()) {
            if (e.getKey().equals(Nodes.CREATED_BY) && e.getValue().equals(OpsetUpgrade.NAME)) {
                return true;
            }
        }
        return false;
    }

    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8, 9, 10, 11, 12})
    void axesAndSplitAttributesBecomeInputs(long opset) {
        long last = opset >= 11 ? -1 : 2; // negative axes are valid from 11
        NodeProto split = OrtTestSupport.node("Split", "split_sizes", List.of("x"), List.of("p0", "p1"),
                Nodes.intAttribute("axis", 1), Nodes.intsAttribute("split", 1, 2));
        NodeProto splitEven = OrtTestSupport.node("Split", "split_even", List.of("x"), List.of("q0", "q1"),
                Nodes.intAttribute("axis", 0));
        Model in = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3, 4))
                .outputs("u", "sq", "sq_all", "r_keep", "r_drop", "r_all", "p0", "p1", "q0", "q1")
                .node("Unsqueeze", "unsqueeze", List.of("x"), List.of("u"), Nodes.intsAttribute("axes", 1, 4))
                .node("Squeeze", "squeeze", List.of("u"), List.of("sq"), Nodes.intsAttribute("axes", 1))
                .node("Squeeze", "squeeze_all", List.of("u"), List.of("sq_all"))
                .node("ReduceSum", "reduce_keep", List.of("x"), List.of("r_keep"), Nodes.intsAttribute("axes", 1))
                .node("ReduceSum", "reduce_drop", List.of("x"), List.of("r_drop"), Nodes.intsAttribute("axes", 0, last),
                        Nodes.intAttribute("keepdims", 0))
                .node("ReduceSum", "reduce_all", List.of("x"), List.of("r_all"))
                .node(split).node(splitEven)
                .build();
        Model out = upgrade(in);
        for (NodeProto n : out.graph().getNodeList()) {
            assertTrue(Nodes.attr(n, "axes").isEmpty() && Nodes.attr(n, "split").isEmpty(),
                    "attribute left on " + n.getName());
        }
        assertEquals(2, nodeNamed(out, "unsqueeze").getInputCount());
        assertEquals(1, nodeNamed(out, "squeeze_all").getInputCount());
        assertEquals(1, nodeNamed(out, "reduce_all").getInputCount());
        assertEquals(1, nodeNamed(out, "split_even").getInputCount());
        String sizes = nodeNamed(out, "split_sizes").getInput(1);
        assertArrayEquals(new long[] {1, 2}, Tensors.longs(
                out.graph().getInitializerList().stream().filter(t -> t.getName().equals(sizes)).findFirst().orElseThrow()));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(opset), 2, 3, 4)));
    }

    /**
     * Before 13 these operators flattened the input to 2-D at the axis; where the axis is the last
     * one the rewrite just sets it, elsewhere (or when the rank is unknown) it goes through Flatten.
     */
    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8, 9, 10, 11, 12})
    void softmaxFamilyKeepsTheFlattenTo2dMeaning(long opset) {
        long minusOne = opset >= 11 ? -1 : 3;
        Model in = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3, 4, 5)).input(OrtTestSupport.anyFloat("z"))
                .outputs("s_default", "s_last", "ls_minus1", "h_mid", "s_transposed", "s_unknown_rank", "ls_rank2")
                .node("Softmax", "s_default", List.of("x"), List.of("s_default"))
                .node("Softmax", "s_last", List.of("x"), List.of("s_last"), Nodes.intAttribute("axis", 3))
                .node("LogSoftmax", "ls_minus1", List.of("x"), List.of("ls_minus1"), Nodes.intAttribute("axis", minusOne))
                .node("Hardmax", "h_mid", List.of("x"), List.of("h_mid"), Nodes.intAttribute("axis", 2))
                .node("Relu", "relu", List.of("x"), List.of("rx"))
                .node("Transpose", "transpose", List.of("rx"), List.of("tx"), Nodes.intsAttribute("perm", 0, 2, 1, 3))
                .node("Softmax", "s_transposed", List.of("tx"), List.of("s_transposed"), Nodes.intAttribute("axis", 3))
                .node("Softmax", "s_unknown_rank", List.of("z"), List.of("s_unknown_rank"), Nodes.intAttribute("axis", 2))
                .node("Flatten", "flatten_in", List.of("x"), List.of("fx"), Nodes.intAttribute("axis", 2))
                .node("LogSoftmax", "ls_rank2", List.of("fx"), List.of("ls_rank2"))
                .build();
        Model out = upgrade(in);
        // s_default (axis 1 of 4), h_mid (axis 2 of 4) and s_unknown_rank go through Flatten; the other
        // four are on the last axis of a known rank.
        assertEquals(4, count(out, "Flatten"), OrtTestSupport.opTypes(out).toString());
        assertEquals(3, count(out, "Reshape"));
        for (String plain : List.of("s_last", "ls_minus1", "s_transposed", "ls_rank2")) {
            NodeProto n = nodeNamed(out, plain);
            assertTrue(Nodes.attr(n, "axis").isPresent(), plain);
            assertEquals(n.getInput(0), nodeNamed(in, plain).getInput(0), plain + " reads its input directly");
        }
        for (NodeProto n : out.graph().getNodeList()) {
            if (n.getOpType().equals("Reshape") || n.getOpType().equals("Shape")) {
                assertTrue(taggedByUpgrade(n), "created node not tagged: " + n.getName());
            }
        }
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(opset), 2, 3, 4, 5),
                "z", randomFloats(new Random(opset + 100), 2, 3, 4, 5)));
    }

    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8, 9, 10, 11, 12})
    void dropoutBecomesIdentity(long opset) {
        ModelBuilder b = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3)).outputs("y");
        if (opset >= 12) {
            b.init(Tensors.floatScalar("ratio", 0.3f)).node("Dropout", "drop", List.of("x", "ratio"), List.of("d"));
        } else {
            b.node("Dropout", "drop", List.of("x"), List.of("d"), Nodes.floatAttribute("ratio", 0.3f));
        }
        Model in = b.node("Relu", "relu", List.of("d"), List.of("y")).build();
        Model out = upgrade(in);
        NodeProto drop = nodeNamed(out, "drop");
        assertEquals("Identity", drop.getOpType());
        assertTrue(taggedByUpgrade(drop));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(3), 2, 3)));
    }

    /**
     * ORT's Dropout before 12 returns an all-zero mask at inference (float before 10, bool after),
     * from 12 an all-true one: a read mask becomes that constant, and the outputs stay the same.
     */
    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8, 9, 10, 11, 12})
    void dropoutWhoseMaskIsReadKeepsItsMask(long opset) {
        int maskType = opset < 10 ? FLOAT : DataType.BOOL.code;
        ModelBuilder b = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3)).outputs("d")
                .output(tensor("mask", maskType, 2, 3));
        Model in = (opset < 12 ? b.node("Dropout", "drop", List.of("x"), List.of("d", "mask"), Nodes.floatAttribute("ratio", 0.3f))
                : b.node("Dropout", "drop", List.of("x"), List.of("d", "mask"))).build();
        Model out = upgrade(in);
        assertEquals(opset < 12 ? "Identity" : "Dropout", nodeNamed(out, "drop").getOpType());
        assertEquals(opset < 12 ? 1 : 0, count(out, "ConstantOfShape"));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(4), 2, 3)));
    }

    /** Clip bounds, Pad pads/value, Slice ranges and TopK k were attributes before 10/11. */
    @ParameterizedTest(name = "opset {0}")
    @ValueSource(longs = {7, 8, 9, 10})
    void attributeOperandsBecomeInputs(long opset) {
        ModelBuilder b = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3, 4))
                .outputs("c_both", "c_max", "c_none", "pad_const", "pad_zero", "pad_reflect", "sl_axes", "sl_all",
                        "top_v")
                .output(tensor("top_i", INT64, 2, 3, 2))
                .node("Clip", "c_both", List.of("x"), List.of("c_both"), Nodes.floatAttribute("min", -0.5f),
                        Nodes.floatAttribute("max", 0.7f))
                .node("Clip", "c_max", List.of("x"), List.of("c_max"), Nodes.floatAttribute("max", 0.2f))
                .node("Clip", "c_none", List.of("x"), List.of("c_none"))
                .node("Pad", "pad_const", List.of("x"), List.of("pad_const"), Nodes.intsAttribute("pads", 0, 1, 2, 0, 2, 1),
                        Nodes.floatAttribute("value", 1.5f))
                .node("Pad", "pad_zero", List.of("x"), List.of("pad_zero"), Nodes.intsAttribute("pads", 1, 0, 0, 0, 0, 3))
                .node("Pad", "pad_reflect", List.of("x"), List.of("pad_reflect"),
                        Nodes.intsAttribute("pads", 0, 1, 2, 0, 1, 1), Nodes.stringAttribute("mode", "reflect"));
        if (opset < 10) {
            b.node("Slice", "sl_axes", List.of("x"), List.of("sl_axes"), Nodes.intsAttribute("starts", 1, 0),
                    Nodes.intsAttribute("ends", 3, 100), Nodes.intsAttribute("axes", 1, 2))
                    .node("Slice", "sl_all", List.of("x"), List.of("sl_all"), Nodes.intsAttribute("starts", 0, -2, 1),
                            Nodes.intsAttribute("ends", 1, 1000, -1))
                    .node(OrtTestSupport.node("TopK", "top", List.of("x"), List.of("top_v", "top_i"),
                            Nodes.intAttribute("k", 2)));
        } else {
            b.init(Tensors.int64Tensor("s1", new long[] {2}, new long[] {1, 0}))
                    .init(Tensors.int64Tensor("e1", new long[] {2}, new long[] {3, 100}))
                    .init(Tensors.int64Tensor("a1", new long[] {2}, new long[] {1, 2}))
                    .init(Tensors.int64Tensor("s2", new long[] {3}, new long[] {0, -2, 1}))
                    .init(Tensors.int64Tensor("e2", new long[] {3}, new long[] {1, 1000, -1}))
                    .init(Tensors.int64Tensor("k", new long[] {1}, new long[] {2}))
                    .node("Slice", "sl_axes", List.of("x", "s1", "e1", "a1"), List.of("sl_axes"))
                    .node("Slice", "sl_all", List.of("x", "s2", "e2"), List.of("sl_all"))
                    .node(OrtTestSupport.node("TopK", "top", List.of("x", "k"), List.of("top_v", "top_i")));
        }
        Model in = b.build();
        Model out = upgrade(in);
        assertEquals(List.of("x", "c_both_min", "c_both_max"), nodeNamed(out, "c_both").getInputList());
        assertEquals(List.of("x", "", "c_max_max"), nodeNamed(out, "c_max").getInputList());
        assertEquals(List.of("x"), nodeNamed(out, "c_none").getInputList());
        assertEquals(3, nodeNamed(out, "pad_const").getInputCount());
        assertEquals(2, nodeNamed(out, "pad_zero").getInputCount());
        assertEquals(4, nodeNamed(out, "sl_axes").getInputCount());
        assertEquals(3, nodeNamed(out, "sl_all").getInputCount());
        assertEquals(2, nodeNamed(out, "top").getInputCount());
        for (NodeProto n : out.graph().getNodeList()) {
            for (String a : List.of("min", "max", "pads", "value", "starts", "ends", "axes", "k")) {
                assertTrue(Nodes.attr(n, a).isEmpty(), a + " left on " + n.getName());
            }
        }
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(opset), 2, 3, 4)));
    }

    private static HostTensor randomDoubles(long seed, long... shape) {
        int n = (int) HostTensor.numel(shape);
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(8 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        Random r = new Random(seed);
        for (int i = 0; i < n; i++) {
            buf.putDouble(r.nextGaussian());
        }
        buf.flip();
        return new HostTensor(DataType.DOUBLE, shape, buf);
    }

    /** New Clip bounds and Pad values take the input's element type (here double). */
    @Test
    void clipAndPadConstantsTakeTheInputType() {
        Model pad = new ModelBuilder(10).input(tensor("x", DataType.DOUBLE.code, 2, 3))
                .output(tensor("p", DataType.DOUBLE.code, 2, 5))
                .node("Pad", "pad", List.of("x"), List.of("p"), Nodes.intsAttribute("pads", 0, 1, 0, 1),
                        Nodes.floatAttribute("value", -3f))
                .build();
        Model padOut = upgrade(pad);
        assertEquals(DataType.DOUBLE.code, padOut.graph().getInitializerList().stream()
                .filter(t -> t.getName().equals("pad_value")).findFirst().orElseThrow().getDataType());
        assertEquivalent(pad, padOut, Map.of("x", randomDoubles(5, 2, 3)));

        // ORT has no double Clip-6 kernel, so the upgraded Clip is checked against values computed here.
        Model clip = new ModelBuilder(10).input(tensor("x", DataType.DOUBLE.code, 2, 3))
                .output(tensor("c", DataType.DOUBLE.code, 2, 3))
                .node("Clip", "clip", List.of("x"), List.of("c"), Nodes.floatAttribute("min", -0.5f),
                        Nodes.floatAttribute("max", 0.25f))
                .build();
        Model clipOut = upgrade(clip);
        for (var t : clipOut.graph().getInitializerList()) {
            assertEquals(DataType.DOUBLE.code, t.getDataType(), t.getName());
        }
        HostTensor x = randomDoubles(6, 2, 3);
        java.nio.ByteBuffer in = x.bytes();
        java.nio.ByteBuffer expected = java.nio.ByteBuffer.allocate(48).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 6; i++) {
            expected.putDouble(Math.min(0.25, Math.max(-0.5, in.getDouble(8 * i))));
        }
        expected.flip();
        OrtTestSupport.assertClose(Map.of("c", new HostTensor(DataType.DOUBLE, new long[] {2, 3}, expected)),
                OrtTestSupport.run(clipOut, Map.of("x", x)), 0);
    }

    /** Upsample (opset 9) becomes Resize with asymmetric coordinates, nearest rounding down. */
    /**
     * ORT's own LayerNormalization in the ONNX domain, which its optimizer writes into graphs of any opset (ONNX
     * defines it from 17): kept through the upgrade, and ORT runs it the same before and after.
     */
    @Test
    void ortsLayerNormalizationIsKeptAtAnOldOpset() {
        Model in = new ModelBuilder(11).input(tensor("x", FLOAT, 2, 3, 8)).outputs("y")
                .init(Tensors.floatTensor("gamma", new long[] {8}, new float[] {1, 2, 3, 4, 5, 6, 7, 8}))
                .init(Tensors.floatTensor("beta", new long[] {8}, new float[8]))
                .node("LayerNormalization", "ln", List.of("x", "gamma", "beta"), List.of("y"),
                        Nodes.intAttribute("axis", -1), Nodes.floatAttribute("epsilon", 1e-5f))
                .build();
        Model out = upgrade(in);
        assertEquals(1, count(out, "LayerNormalization"));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(7), 2, 3, 8)));
    }

    @Test
    void upsampleBecomesResize() {
        Model in = new ModelBuilder(9).input(tensor("x", FLOAT, 1, 2, 3, 4)).outputs("n", "l")
                .init(Tensors.floatTensor("s", new long[] {4}, new float[] {1, 1, 2, 3}))
                .init(Tensors.floatTensor("s2", new long[] {4}, new float[] {1, 1, 1.5f, 2.5f}))
                .node("Upsample", "up_nearest", List.of("x", "s"), List.of("n"))
                .node("Upsample", "up_linear", List.of("x", "s2"), List.of("l"), Nodes.stringAttribute("mode", "linear"))
                .build();
        Model out = upgrade(in);
        assertEquals(0, count(out, "Upsample"));
        assertEquals(2, count(out, "Resize"));
        assertTrue(taggedByUpgrade(nodeNamed(out, "up_nearest")));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(6), 1, 2, 3, 4)));
    }

    /**
     * Resize at opset 10 (inputs X, scales) as ORT runs it: asymmetric coordinates; nearest rounds
     * down when enlarging and up when shrinking.
     */
    @Test
    void opset10ResizeKeepsItsCoordinates() {
        Model in = new ModelBuilder(10).input(tensor("x", FLOAT, 1, 2, 7, 9)).outputs("nu", "nd", "lu", "ld")
                .init(Tensors.floatTensor("up", new long[] {4}, new float[] {1, 1, 2, 3}))
                .init(Tensors.floatTensor("up2", new long[] {4}, new float[] {1, 1, 1.5f, 2.5f}))
                .node("Constant", "down_const", List.of(), List.of("down"),
                        Nodes.tensorAttribute("value", Tensors.floatTensor("", new long[] {4}, new float[] {1, 1, 0.6f, 0.5f})))
                .node("Resize", "nearest_up", List.of("x", "up"), List.of("nu"))
                .node("Resize", "nearest_down", List.of("x", "down"), List.of("nd"), Nodes.stringAttribute("mode", "nearest"))
                .node("Resize", "linear_up", List.of("x", "up2"), List.of("lu"), Nodes.stringAttribute("mode", "linear"))
                .node("Resize", "linear_down", List.of("x", "down"), List.of("ld"), Nodes.stringAttribute("mode", "linear"))
                .build();
        Model out = upgrade(in);
        assertEquals("floor", Nodes.stringAttr(nodeNamed(out, "nearest_up"), "nearest_mode", ""));
        assertEquals("ceil", Nodes.stringAttr(nodeNamed(out, "nearest_down"), "nearest_mode", ""));
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(7), 1, 2, 7, 9)));
    }

    @Test
    void opset10NearestResizeThatCannotBeKeptIsRefused() {
        Model mixed = new ModelBuilder(10).input(tensor("x", FLOAT, 1, 2, 7, 9)).outputs("y")
                .init(Tensors.floatTensor("s", new long[] {4}, new float[] {1, 1, 0.7f, 1.7f}))
                .node("Resize", "mixed", List.of("x", "s"), List.of("y")).build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(mixed));
        assertTrue(e.getMessage().startsWith("cannot upgrade Resize node 'mixed' from opset 10 to 13"), e.getMessage());

        Model dynamic = new ModelBuilder(10).input(tensor("x", FLOAT, 1, 2, 7, 9)).input(tensor("s", FLOAT, 4))
                .outputs("y").node("Resize", "dynamic", List.of("x", "s"), List.of("y")).build();
        e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(dynamic));
        assertTrue(e.getMessage().contains("Resize node 'dynamic'") && e.getMessage().contains("constant scales"),
                e.getMessage());
    }

    @Test
    void scatterBecomesScatterElements() {
        Model in = new ModelBuilder(10).input(tensor("x", FLOAT, 3, 3)).input(tensor("u", FLOAT, 2, 3)).outputs("y")
                .init(Tensors.int64Tensor("idx", new long[] {2, 3}, new long[] {1, 0, 2, 0, 2, 1}))
                .node("Scatter", "scatter", List.of("x", "idx", "u"), List.of("y"), Nodes.intAttribute("axis", 0))
                .build();
        Model out = upgrade(in);
        assertEquals("ScatterElements", nodeNamed(out, "scatter").getOpType());
        Random r = new Random(8);
        assertEquivalent(in, out, Map.of("x", randomFloats(r, 3, 3), "u", randomFloats(r, 2, 3)));
    }

    /** Whitelisted operators pass through unchanged, and the model still computes the same. */
    @Test
    void unchangedOperatorsPassThrough() {
        Model in = new ModelBuilder(11).input(tensor("x", FLOAT, 1, 3, 8, 8)).outputs("y")
                .init(Tensors.floatTensor("w", new long[] {4, 3, 3, 3}, new float[108]))
                .init(Tensors.floatTensor("lo", new long[0], new float[] {0f}))
                .init(Tensors.floatTensor("hi", new long[0], new float[] {6f}))
                .node("Conv", "conv", List.of("x", "w"), List.of("c"), Nodes.intsAttribute("pads", 1, 1, 1, 1))
                .node("Clip", "relu6", List.of("c", "lo", "hi"), List.of("r"))
                .node("GlobalAveragePool", "gap", List.of("r"), List.of("g"))
                .node("Flatten", "flat", List.of("g"), List.of("f"))
                .node("HardSigmoid", "hs", List.of("f"), List.of("y"))
                .build();
        Model out = upgrade(in);
        assertEquals(in.graph().getNodeList(), out.graph().getNodeList());
        assertEquivalent(in, out, Map.of("x", randomFloats(new Random(9), 1, 3, 8, 8)));
    }

    @Test
    void anUnknownOperatorIsNamedInTheError() {
        Model in = new ModelBuilder(11).input(tensor("x", FLOAT, 1, 4)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("r"))
                .node("Foo", "n", List.of("r"), List.of("y")).build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(in));
        assertTrue(e.getMessage().startsWith("cannot upgrade Foo node 'n' from opset 11 to 13"), e.getMessage());

        Model unpool = new ModelBuilder(10).input(tensor("x", FLOAT, 1, 1, 2, 2)).input(tensor("i", INT64, 1, 1, 2, 2))
                .outputs("y").node("MaxUnpool", "unpool", List.of("x", "i"), List.of("y"),
                        Nodes.intsAttribute("kernel_shape", 2, 2)).build();
        e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(unpool));
        assertTrue(e.getMessage().startsWith("cannot upgrade MaxUnpool node 'unpool' from opset 10 to 13"), e.getMessage());
    }

    @Test
    void anOperatorNewerThanTheModelsOpsetIsRefused() {
        Model in = new ModelBuilder(9).input(tensor("x", FLOAT, 3)).outputs("y")
                .node("Round", "round", List.of("x"), List.of("y")).build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(in));
        assertTrue(e.getMessage().startsWith("cannot upgrade Round node 'round' from opset 9 to 13"), e.getMessage());
    }

    @Test
    void opsetsBelow7AreRefused() {
        Model old = new ModelBuilder(6).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("y")).build();
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(13).run(old));
        assertEquals("cannot upgrade a model at opset 6 to 13: models below opset 7 are not supported", e.getMessage());
    }

    @Test
    void customDomainNodesPassThrough() {
        NodeProto custom = OrtTestSupport.node("FancyOp", "fancy", List.of("x"), List.of("f"),
                Nodes.intsAttribute("axes", 1)).toBuilder().setDomain("com.example").build();
        ModelProto p = new ModelBuilder(11).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                .node(custom).node("Softmax", "soft", List.of("f"), List.of("y"), Nodes.intAttribute("axis", -1))
                .proto().toBuilder()
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.example").setVersion(3)).build();
        Model out = upgrade(new Model(p));
        assertEquals(custom, nodeNamed(out, "fancy"));
        assertEquals(3, out.opsetVersion("com.example"));
    }

    @Test
    void modelsAtOpset13OrLaterAreLeftAlone() {
        for (long opset : new long[] {13, 14, 17}) {
            Model m = new ModelBuilder(opset).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                    .node("Softmax", "soft", List.of("x"), List.of("y")).build();
            PassResult r = new OpsetUpgrade(13).run(m);
            assertFalse(r.changed());
            assertSame(m, r.model());
        }
    }

    @Test
    void irVersionIsRaisedToAtLeast7() {
        Model ir6 = new ModelBuilder(11).irVersion(6).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("y")).build();
        assertEquals(7, upgrade(ir6).proto().getIrVersion());
        Model ir8 = new ModelBuilder(11).irVersion(8).input(tensor("x", FLOAT, 2)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("y")).build();
        assertEquals(8, upgrade(ir8).proto().getIrVersion());
    }

    @Test
    void targetsFrom13To21() {
        assertThrows(QwtException.class, () -> new OpsetUpgrade(12));
        QwtException e = assertThrows(QwtException.class, () -> new OpsetUpgrade(OpsetUpgrade.MAX_TARGET + 1));
        assertEquals("the target opset must be between 13 and 21, not 22", e.getMessage());
        assertEquals(OpsetUpgrade.NAME, new OpsetUpgrade(21).name());
    }
}
