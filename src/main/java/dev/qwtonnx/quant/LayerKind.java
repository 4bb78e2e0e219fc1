package dev.qwtonnx.quant;

import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;

/** The operators quantized with a constant weight. */
public enum LayerKind {
    CONV("Conv"), MATMUL("MatMul"), GEMM("Gemm");

    public final String opType;

    LayerKind(String opType) {
        this.opType = opType;
    }

    public static LayerKind of(String opType) {
        for (LayerKind k : values()) {
            if (k.opType.equals(opType)) {
                return k;
            }
        }
        return null;
    }

    /**
     * The axis of {@code node}'s 2-D (Conv: 4-D) weight that indexes output channels: 0 for Conv
     * (M×C×kH×kW), 1 for MatMul (K×N), and for Gemm 0 with transB (N×K) else 1; the same for the
     * integer forms (QLinearConv, QLinearMatMul, com.microsoft QGemm, ...) of each kind.
     */
    public int weightAxis(NodeProto node) {
        return switch (this) {
            case CONV -> 0;
            case MATMUL -> 1;
            case GEMM -> Nodes.intAttr(node, "transB", 0) != 0 ? 0 : 1;
        };
    }
}
