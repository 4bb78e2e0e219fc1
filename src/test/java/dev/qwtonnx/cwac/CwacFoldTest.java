package dev.qwtonnx.cwac;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fold fails closed: a constant it changes for one layer and another node also reads is copied
 * for that layer (the other reader computes bit for bit what it did), and a layer whose constants it
 * cannot trace is rejected with a reason, the graph as it was.
 */
class CwacFoldTest {
    private static final float X_SCALE = 0.05f;
    private static final float[] W_SCALE = {0.02f, 0.03f, 0.025f};

    /**
     * x → Q → DQ feeding two Convs. With {@code sharedDq}, both Convs read one weight
     * DequantizeLinear and one bias DequantizeLinear; without, each has its own DequantizeLinears,
     * which read one weight-scale initializer and one bias-scale initializer.
     */
    private static Model twoConvs(boolean sharedDq) {
        Random r = new Random(7);
        byte[] w = new byte[3 * 2 * 3 * 3];
        for (int i = 0; i < w.length; i++) {
            w[i] = (byte) (r.nextInt(255) - 127);
        }
        float[] biasScale = new float[3];
        for (int c = 0; c < 3; c++) {
            biasScale[c] = X_SCALE * W_SCALE[c];
        }
        ModelBuilder b = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 2, 5, 5)).outputs("y1", "y2")
                .init(Tensors.floatScalar("xs", X_SCALE))
                .init(Tensors.byteTensor("xz", DataType.UINT8, new long[0], new int[] {128}))
                .init(Tensors.int8Tensor("w", new long[] {3, 2, 3, 3}, w))
                .init(Tensors.floatTensor("ws", new long[] {3}, W_SCALE))
                .init(Tensors.byteTensor("wz", DataType.INT8, new long[] {3}, new int[3]))
                .init(Tensors.int32Tensor("bq", new long[] {3}, new int[] {40, -25, 7}))
                .init(Tensors.floatTensor("bs", new long[] {3}, biasScale))
                .init(Tensors.int32Tensor("bz", new long[] {3}, new int[3]))
                .node("QuantizeLinear", "xq", List.of("x", "xs", "xz"), List.of("x_q"))
                .node("DequantizeLinear", "xdq", List.of("x_q", "xs", "xz"), List.of("x_d"));
        int copies = sharedDq ? 1 : 2;
        for (int i = 1; i <= copies; i++) {
            b.node("DequantizeLinear", "wdq" + i, List.of("w", "ws", "wz"), List.of("w_d" + i),
                    Nodes.intAttribute("axis", 0));
            b.node("DequantizeLinear", "bdq" + i, List.of("bq", "bs", "bz"), List.of("b_d" + i),
                    Nodes.intAttribute("axis", 0));
        }
        String w2 = sharedDq ? "w_d1" : "w_d2";
        String b2 = sharedDq ? "b_d1" : "b_d2";
        return b.node("Conv", "conv1", List.of("x_d", "w_d1", "b_d1"), List.of("y1"))
                .node("Conv", "conv2", List.of("x_d", w2, b2), List.of("y2"), Nodes.intsAttribute("pads", 1, 1, 1, 1))
                .build();
    }

    private static final ChannelFit FIT = new ChannelFit(new double[] {1.1, 0.9, 1.05},
            new double[] {0.2, -0.1, 0.05}, 1, 0.5, 10);

    private static QdqLayer layer(Model m, String name) {
        for (QdqLayer l : QdqLayers.find(m).layers()) {
            if (l.name().equals(name)) {
                return l;
            }
        }
        throw new AssertionError("layer " + name + " not found");
    }

    /** The initializers a node reads, directly or through the DequantizeLinears it reads, by its input index. */
    private static Map<String, TensorProto> constantsOf(Model m, String node) {
        GraphEditor g = new GraphEditor(m.graph());
        NodeProto n = g.nodes().stream().filter(x -> x.getName().equals(node)).findFirst().orElseThrow();
        Map<String, TensorProto> out = new java.util.TreeMap<>();
        for (int i = 0; i < n.getInputCount(); i++) {
            NodeProto p = g.producer(n.getInput(i));
            List<String> reads = p == null ? List.of(n.getInput(i)) : p.getInputList();
            for (int j = 0; j < reads.size(); j++) {
                TensorProto t = g.initializer(reads.get(j));
                if (t != null) {
                    // The value alone: a copy has another name.
                    out.put(i + "." + j, t.toBuilder().setName("").build());
                }
            }
        }
        return out;
    }

    private static void assertOtherReaderUnchangedAndFitFolded(Model in) {
        QdqLayer conv1 = layer(in, "conv1");
        CwacFold.Outcome out = new CwacFold(List.of(conv1), Map.of("conv1", FIT)).apply(in);
        assertEquals(List.of(), out.rejected());
        assertTrue(out.result().changed());
        Model folded = out.model();
        ModelChecker.checkForRuntime(folded);

        // The other reader's constants are the same bytes, and so are its outputs.
        assertEquals(constantsOf(in, "conv2"), constantsOf(folded, "conv2"));
        Map<String, HostTensor> feed = Map.of("x", randomFloats(new Random(3), 1, 2, 5, 5));
        Map<String, HostTensor> before = OrtTestSupport.run(in, feed);
        Map<String, HostTensor> after = OrtTestSupport.run(folded, feed);
        assertArrayEquals(before.get("y2").toFloats(), after.get("y2").toFloats(), 0f);

        // The compensated layer computes a·y + b per channel, up to the rounding of its refolded int32 bias.
        float[] y = before.get("y1").toFloats();
        float[] z = after.get("y1").toFloats();
        assertNotEquals(0, Math.abs(y[0] - z[0]));
        int inner = y.length / 3;
        for (int i = 0; i < y.length; i++) {
            int c = i / inner;
            double expected = FIT.a()[c] * y[i] + FIT.b()[c];
            double tolerance = 0.5 * X_SCALE * W_SCALE[c] * FIT.a()[c] * (1 + 1e-3) + 1e-5 * Math.abs(expected);
            assertTrue(Math.abs(expected - z[i]) <= tolerance, "channel " + c + ": " + z[i] + " for " + expected);
        }
    }

    @Test
    void aDequantizeLinearSharedWithAnotherLayerIsCopiedForTheFoldedOne() {
        Model in = twoConvs(true);
        assertOtherReaderUnchangedAndFitFolded(in);
        Model folded = new CwacFold(List.of(layer(in, "conv1")), Map.of("conv1", FIT)).run(in).model();
        // conv1 reads DequantizeLinears of its own; conv2 the original ones, which read the original constants.
        assertEquals(OrtTestSupport.count(in, "DequantizeLinear") + 2, OrtTestSupport.count(folded, "DequantizeLinear"));
        assertEquals(List.of("x_d", "w_d1", "b_d1"), node(folded, "conv2").getInputList());
    }

    @Test
    void scaleInitializersSharedThroughAnotherDequantizeLinearAreCopied() {
        Model in = twoConvs(false);
        assertOtherReaderUnchangedAndFitFolded(in);
        Model folded = new CwacFold(List.of(layer(in, "conv1")), Map.of("conv1", FIT)).run(in).model();
        assertEquals(OrtTestSupport.count(in, "DequantizeLinear"), OrtTestSupport.count(folded, "DequantizeLinear"));
        assertEquals(List.of("w", "ws", "wz"), node(folded, "wdq2").getInputList());
        assertEquals(List.of("bq", "bs", "bz"), node(folded, "bdq2").getInputList());
        assertNotEquals("ws", node(folded, "wdq1").getInput(1));
    }

    @Test
    void aLayerWhoseConstantsCannotBeTracedIsRejectedWithAReason() {
        Model in = twoConvs(false);
        QdqLayer conv1 = layer(in, "conv1");
        // The layer as another analysis might describe it: its weight scale is the activation's, which conv1 reads
        // through another DequantizeLinear than its weight's; or its node is not there.
        QdqLayer wrong = new QdqLayer(conv1.kind(), conv1.name(), conv1.input(), conv1.inputScale(), "xs",
                conv1.biasQuantized(), conv1.biasScale(), null, null, conv1.output(), conv1.channels());
        QdqLayer renamed = new QdqLayer(conv1.kind(), "gone", conv1.input(), conv1.inputScale(), conv1.weightScale(),
                conv1.biasQuantized(), conv1.biasScale(), null, null, conv1.output(), conv1.channels());
        CwacFold.Outcome out = new CwacFold(List.of(wrong, renamed), Map.of("conv1", FIT, "gone", FIT)).apply(in);
        assertSame(in, out.model());
        assertEquals(2, out.rejected().size());
        List<String> reasons = new ArrayList<>();
        out.rejected().forEach(r -> reasons.add(r.reason()));
        assertTrue(reasons.get(0).contains("weight scale 'xs' is not read once, by the DequantizeLinear of its weight"), reasons.get(0));
        assertTrue(reasons.get(1).contains("no single node named 'gone'"), reasons.get(1));
    }

    private static NodeProto node(Model m, String name) {
        return m.graph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElseThrow();
    }
}
