package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.CpuFeatures;
import java.nio.ByteBuffer;

/**
 * Which arithmetic compensation measures a quantized model in. ORT fuses Q/DQ layers into integer
 * kernels; on x86 without VNNI its u8·s8 kernels add two products in 16 bits, which saturates once
 * two weights add up to more than 128 in magnitude (255·128 is the last sum that fits). There a
 * model with full-range 8-bit weights computes something else than its grid, and something else
 * than it computes on the CPUs it is likely made for (VNNI, ARM's dot product, GPUs): measuring
 * those kernels would fit the quantizing machine's saturation and make the output depend on that
 * machine. So such a model is measured on the grid ({@link OrtRunner#of}: Q/DQ run as written);
 * every other is measured as ORT runs it, where the fused kernels and the grid differ only in
 * rounding (7-bit weights, the {@code cpu} target's, never saturate).
 */
public final class Grid {
    /** The largest weight magnitude whose pairs never saturate: |w1| + |w2| ≤ 128. */
    static final int SAFE_MAGNITUDE = 64;

    private Grid() {
    }

    /** Whether {@code quant} is measured on the grid on this machine. */
    public static boolean measures(Model quant) {
        return CpuFeatures.current().lacksInt8DotProduct() && fullRange(quant);
    }

    /** Whether an int8 tensor of more than one element (a weight, not a zero point) holds a value beyond ±64. */
    static boolean fullRange(Model quant) {
        for (TensorProto t : quant.graph().getInitializerList()) {
            if (t.getDataType() != TensorProto.DataType.INT8_VALUE || Tensors.isExternal(t)
                    || HostTensor.numel(Tensors.dims(t)) < 2) {
                continue;
            }
            ByteBuffer b = Tensors.toHost(t).bytes();
            for (int i = b.position(); i < b.limit(); i++) {
                int v = b.get(i);
                if (v > SAFE_MAGNITUDE || v < -SAFE_MAGNITUDE) {
                    return true;
                }
            }
        }
        return false;
    }
}
