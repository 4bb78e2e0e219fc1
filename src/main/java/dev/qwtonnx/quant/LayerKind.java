package dev.qwtonnx.quant;

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
}
