package dev.qwtonnx.quant;

import dev.qwtonnx.QwtException;
import java.util.EnumSet;
import java.util.Set;

/**
 * How weights and activations are quantized. Validated once, at construction.
 *
 * @param weightBits     bits of the symmetric weight grid (stored in int8): 2..8
 * @param reduceRange    use one bit less of the weight grid (7 bits at 8), which keeps ORT's u8·s8
 *                       kernels from saturating on x86 CPUs without VNNI
 * @param outputQuantized op types whose output is re-quantized (output Q); the others keep a float
 *                       output for the next layer to quantize (MatMul → MatMulIntegerToFloat)
 */
public record QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized) {
    public QuantOptions {
        if (weightBits < 2 || weightBits > 8) {
            throw new QwtException("weight bits must be between 2 and 8, got " + weightBits);
        }
        outputQuantized = Set.copyOf(outputQuantized.isEmpty() ? EnumSet.noneOf(LayerKind.class) : EnumSet.copyOf(outputQuantized));
        if (!outputQuantized.contains(LayerKind.CONV)) {
            // ORT has no Conv kernel with int8 inputs and a float output: without the output Q a Conv runs in float.
            throw new QwtException("Conv layers need a quantized output to run as integer kernels");
        }
    }

    public static QuantOptions defaults() {
        return new QuantOptions(8, false, EnumSet.of(LayerKind.CONV));
    }

    /** The largest integer weight magnitude: 127 at 8 bits, 63 with reduce_range. */
    public int weightQmax() {
        int bits = reduceRange ? weightBits - 1 : weightBits;
        return (1 << (bits - 1)) - 1;
    }
}
