package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class UnfuseOrtOpsTest {
    private static NodeProto fused(String op, String name, List<String> inputs, String output, AttributeProto... attrs) {
        NodeProto.Builder b = NodeProto.newBuilder().setOpType(op).setDomain("com.microsoft").setName(name)
                .addAllInput(inputs).addOutput(output);
        for (AttributeProto a : attrs) {
            b.addAttribute(a);
        }
        return b.build();
    }

    private static AttributeProto floats(String name, float... v) {
        AttributeProto.Builder a = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOATS);
        for (float f : v) {
            a.addFloats(f);
        }
        return a.build();
    }

    /**
     * FusedConv with each activation and FusedMatMul with a transposed, scaled weight become Conv, the activation
     * and MatMul, which ORT runs to the same outputs; a FusedMatMul transposing its input stays, with the reason.
     */
    @Test
    void ortsFusedLayersBecomeTheLayersTheyWereFusedFrom() {
        ModelBuilder b = new ModelBuilder(7, 13).input("x", TensorProto.DataType.FLOAT_VALUE, 1, 3, 8, 8);
        String w = b.randomInit("w", 0.3, 4, 3, 3, 3);
        String bias = b.randomInit("b", 0.1, 4);
        List<String> outs = new java.util.ArrayList<>();
        Object[][] acts = {{"", new float[0]}, {"Relu", new float[0]}, {"Clip", new float[] {-0.2f, 0.4f}},
            {"HardSigmoid", new float[] {0.2f, 0.5f}}, {"LeakyRelu", new float[] {0.1f}}, {"Sigmoid", new float[0]},
            {"Tanh", new float[0]}};
        for (Object[] a : acts) {
            String y = "y_" + (((String) a[0]).isEmpty() ? "none" : a[0]);
            List<AttributeProto> attrs = new java.util.ArrayList<>(List.of(Nodes.intsAttribute("pads", 1, 1, 1, 1)));
            if (!((String) a[0]).isEmpty()) {
                attrs.add(Nodes.stringAttribute("activation", (String) a[0]));
            }
            if (((float[]) a[1]).length > 0) {
                attrs.add(floats("activation_params", (float[]) a[1]));
            }
            b.node(fused("FusedConv", "conv_" + y, List.of("x", w, bias), y, attrs.toArray(new AttributeProto[0])));
            outs.add(y);
        }
        String flat = b.node("Flatten", List.of(outs.get(1)), "flat");
        String mw = b.randomInit("mw", 0.05, 6, 256); // [N, K]: transB
        b.node(fused("FusedMatMul", "mm", List.of(flat, mw), "m", Nodes.intAttribute("transB", 1),
                Nodes.floatAttribute("alpha", 0.5f)));
        b.node(fused("FusedMatMul", "mm_ta", List.of("m", b.randomInit("tw", 0.1, 1, 6)), "t", Nodes.intAttribute("transA", 1)));
        outs.add("m");
        outs.add("t");
        b.outputs(outs.toArray(new String[0]));
        Model in = new Model(b.proto().toBuilder().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.microsoft")
                .setVersion(1)).build());
        PassResult r = new UnfuseOrtOps().run(in);
        assertTrue(r.changed());
        Model out = r.model();
        ModelChecker.check(out);
        assertEquals(7, OrtTestSupport.count(out, "Conv"));
        assertEquals(1, OrtTestSupport.count(out, "MatMul"));
        assertEquals(1, out.graph().getNodeList().stream().filter(n -> n.getDomain().equals("com.microsoft")).count());
        assertEquals(List.of("FusedMatMul node 'mm_ta': it transposes its input or a batch"),
                r.rejections().stream().map(x -> x.subject() + ": " + x.reason()).toList());
        OrtTestSupport.assertSameOutputs(in, out, Map.of("x", randomFloats(new Random(3), 1, 3, 8, 8)), 1e-5);
    }
}
