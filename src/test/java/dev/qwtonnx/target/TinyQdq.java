package dev.qwtonnx.target;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.ArrayList;
import java.util.List;

/**
 * One quantized weighted layer built to order, for the rule tests: x [1, 4, 4, 4] → Q/DQ → op 'layer'
 * (weight through a DequantizeLinear, optional bias) → optional output Q/DQ → y. Every field is a knob
 * a rule reads; the defaults are today's ORT CPU form (u8 activations, s8 symmetric per-channel
 * weights, int32 bias at x_scale·w_scale, output Q on the layer).
 */
final class TinyQdq {
    static final int C = 4;
    static final float X_SCALE = 0.02f;

    String op = "Conv";
    long opset = 13;
    DataType act = DataType.UINT8;
    int actZeroPoint = 128;
    boolean actQuantized = true;
    String qdqDomain = "";
    DataType weight = DataType.INT8;
    boolean perChannel = true;
    long axis = 0;
    int weightZeroPoint = 0;
    int weightMax = 100;
    /** "int32", "int32-wrong-scale", "float" or "none". */
    String bias = "int32";
    boolean outputQ = true;
    boolean dynamicInput = false;

    static TinyQdq conv() {
        return new TinyQdq();
    }

    static TinyQdq of(String op) {
        TinyQdq t = new TinyQdq();
        t.op = op;
        if (!op.equals("Conv") && !op.equals("ConvTranspose")) {
            t.axis = 1;
        }
        return t;
    }

    Model build() {
        boolean matmul = op.equals("MatMul") || op.equals("Gemm");
        long[] xDims = matmul ? new long[] {2, C} : new long[] {1, C, 4, 4};
        if (dynamicInput) {
            xDims[0] = -1;
        }
        long[] wDims = matmul ? new long[] {C, C} : new long[] {C, C, 1, 1};
        int n = C * C;
        int[] w = new int[n];
        for (int i = 0; i < n; i++) {
            int v = (i * 37 % (2 * weightMax + 1)) - weightMax;
            if (i == 0) {
                v = weightMax; // the largest magnitude is on the grid
            }
            w[i] = weight == DataType.UINT8 ? v + 128 : v;
        }
        int channels = perChannel ? C : 1;
        float[] ws = new float[channels];
        int[] wz = new int[channels];
        for (int c = 0; c < channels; c++) {
            ws[c] = 0.01f + 0.001f * c;
            wz[c] = weight == DataType.UINT8 ? 128 + weightZeroPoint : weightZeroPoint;
        }
        long[] sDims = perChannel ? new long[] {C} : new long[0];
        ModelBuilder b = new ModelBuilder(opset).input(tensor("x", FLOAT, xDims)).outputs("y")
                .init(Tensors.floatScalar("xs", X_SCALE)).init(zeroPoint("xzp", act, new long[0], actZeroPoint))
                .init(Tensors.byteTensor("wq", weight, wDims, w))
                .init(Tensors.floatTensor("ws", sDims, ws))
                .init(Tensors.byteTensor("wzp", weight, sDims, wz))
                .init(Tensors.floatScalar("ys", 0.05f)).init(zeroPoint("yzp", act, new long[0], actZeroPoint));
        String x = "x";
        if (actQuantized) {
            b.node(qdq("QuantizeLinear", "xq", List.of("x", "xs", "xzp"), "x_q"));
            b.node(qdq("DequantizeLinear", "xdq", List.of("x_q", "xs", "xzp"), "x_dq"));
            x = "x_dq";
        }
        b.node("DequantizeLinear", "wdq", List.of("wq", "ws", "wzp"), List.of("w_dq"), Nodes.intAttribute("axis", axis));
        List<String> inputs = new ArrayList<>(List.of(x, "w_dq"));
        switch (bias) {
            case "int32", "int32-wrong-scale" -> {
                float[] bs = new float[channels];
                for (int c = 0; c < channels; c++) {
                    bs[c] = X_SCALE * ws[c] * (bias.equals("int32") ? 1f : 2f);
                }
                int[] bq = new int[channels];
                b.init(Tensors.int32Tensor("bq", sDims, bq)).init(Tensors.floatTensor("bs", sDims, bs))
                        .init(Tensors.int32Tensor("bzp", sDims, new int[channels]));
                b.node("DequantizeLinear", "bdq", List.of("bq", "bs", "bzp"), List.of("b_dq"),
                        Nodes.intAttribute("axis", 0));
                inputs.add("b_dq");
            }
            case "float" -> {
                b.init(Tensors.floatTensor("bf", new long[] {C}, new float[C]));
                inputs.add("bf");
            }
            default -> {
            }
        }
        List<AttributeProto> attrs = new ArrayList<>();
        if (op.equals("Gemm")) {
            attrs.add(Nodes.intAttribute("transB", 0));
        }
        if (op.equals("MatMul")) {
            inputs = inputs.subList(0, 2);
        }
        String layerOut = outputQ ? "h" : "y";
        b.node(op, "layer", inputs, List.of(layerOut), attrs.toArray(AttributeProto[]::new));
        if (outputQ) {
            b.node(qdq("QuantizeLinear", "hq", List.of("h", "ys", "yzp"), "h_q"));
            b.node(qdq("DequantizeLinear", "hdq", List.of("h_q", "ys", "yzp"), "y"));
        }
        return b.build();
    }

    private NodeProto qdq(String op, String name, List<String> in, String out) {
        NodeProto n = Nodes.node(op, name, in, List.of(out), null);
        return n.toBuilder().setDomain(qdqDomain).build();
    }

    static TensorProto zeroPoint(String name, DataType type, long[] dims, int value) {
        if (type == DataType.UINT8 || type == DataType.INT8) {
            return Tensors.byteTensor(name, type, dims, new int[] {value});
        }
        return dev.qwtonnx.model.HostTensor.ofInts(dims, new int[] {value}).toProto(name).toBuilder()
                .setDataType(type.code).clearRawData().addInt32Data(value).build();
    }
}
