package dev.qwtonnx.quant;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.target.Target;
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
 * @param rounding       how weights are put on the grid (nearest, or GPTQ for 2-D weights)
 * @param keepFloat      names of layers (Conv/MatMul/Gemm nodes) the user keeps in float
 * @param floatBudget    how many more layers to keep in float: those whose quantization alone
 *                       hurts the model's outputs most on the calibration data (0 = none)
 * @param target         where the model runs: the integer types, grids and forms every pass writes
 * @param keepSlowInt8   false: layers the cost model estimates slower in int8 than in float stay float
 *                       (targets on ORT's CPU provider); true: every planned layer is quantized
 * @param quantizeLogInputs true: layers whose outputs reach a {@code Log} through magnitude operations are
 *                       quantized too; false: they stay float ({@link LogInputs})
 */
public record QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized,
        WeightRounding rounding, Set<String> keepFloat, int floatBudget, Target target, boolean keepSlowInt8,
        boolean quantizeLogInputs) {
    /** The layers whose outputs reach a {@code Log} through magnitude operations ({@link LogInputs}) left float. */
    public QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized, WeightRounding rounding,
            Set<String> keepFloat, int floatBudget, Target target, boolean keepSlowInt8) {
        this(weightBits, reduceRange, outputQuantized, rounding, keepFloat, floatBudget, target, keepSlowInt8, false);
    }

    /** Every layer the plan matches quantized, even where the cost model estimates int8 slower than float. */
    public QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized, WeightRounding rounding,
            Set<String> keepFloat, int floatBudget, Target target) {
        this(weightBits, reduceRange, outputQuantized, rounding, keepFloat, floatBudget, target, true);
    }

    /** For the default target. */
    public QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized, WeightRounding rounding,
            Set<String> keepFloat, int floatBudget) {
        this(weightBits, reduceRange, outputQuantized, rounding, keepFloat, floatBudget, Target.cpu());
    }

    /** With round-to-nearest weights. */
    public QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized) {
        this(weightBits, reduceRange, outputQuantized, WeightRounding.NEAREST);
    }

    /** Every layer quantized. */
    public QuantOptions(int weightBits, boolean reduceRange, Set<LayerKind> outputQuantized, WeightRounding rounding) {
        this(weightBits, reduceRange, outputQuantized, rounding, Set.of(), 0);
    }

    public QuantOptions {
        if (rounding == null || target == null) {
            throw new IllegalArgumentException("rounding and target are required");
        }
        if (floatBudget < 0) {
            throw new QwtException("the float budget must be 0 or more layers, got " + floatBudget);
        }
        // Sorted and enum-ordered: the options are written into the output's provenance, and Set.copyOf's
        // iteration order changes from one JVM to the next, which would change the output's bytes.
        keepFloat = java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(keepFloat));
        if (weightBits < 2 || weightBits > 8) {
            throw new QwtException("weight bits must be between 2 and 8, got " + weightBits);
        }
        outputQuantized = java.util.Collections.unmodifiableSet(outputQuantized.isEmpty() ? EnumSet.noneOf(LayerKind.class)
                : EnumSet.copyOf(outputQuantized));
        if (target.outputQuantized().contains(LayerKind.CONV.opType) && !outputQuantized.contains(LayerKind.CONV)) {
            // ORT has no Conv kernel with int8 inputs and a float output: without the output Q a Conv runs in float.
            throw new QwtException("Conv layers need a quantized output to run as integer kernels");
        }
    }

    /** The weight rounding used at this option's bit width. */
    public WeightRounding effectiveRounding() {
        return rounding.resolve(weightBits);
    }

    public QuantOptions withRounding(WeightRounding r) {
        return new QuantOptions(weightBits, reduceRange, outputQuantized, r, keepFloat, floatBudget, target, keepSlowInt8,
                quantizeLogInputs);
    }

    public QuantOptions withKeepFloat(Set<String> names) {
        return new QuantOptions(weightBits, reduceRange, outputQuantized, rounding, names, floatBudget, target, keepSlowInt8,
                quantizeLogInputs);
    }

    public QuantOptions withFloatBudget(int layers) {
        return new QuantOptions(weightBits, reduceRange, outputQuantized, rounding, keepFloat, layers, target, keepSlowInt8,
                quantizeLogInputs);
    }

    /**
     * With {@code keep} false, layers the cost model estimates slower in int8 than in float stay float
     * on targets that run on ORT's CPU provider ({@link CostModel}); true (the default) quantizes every
     * planned layer.
     */
    public QuantOptions withKeepSlowInt8(boolean keep) {
        return new QuantOptions(weightBits, reduceRange, outputQuantized, rounding, keepFloat, floatBudget, target, keep,
                quantizeLogInputs);
    }

    /**
     * With {@code quantize} true, the layers whose outputs reach a {@code Log} through magnitude operations are
     * quantized like any other; false (the default) leaves them float ({@link LogInputs}).
     */
    public QuantOptions withQuantizeLogInputs(boolean quantize) {
        return new QuantOptions(weightBits, reduceRange, outputQuantized, rounding, keepFloat, floatBudget, target,
                keepSlowInt8, quantize);
    }

    /** For target {@code t}, with the outputs it re-quantizes. */
    public QuantOptions withTarget(Target t) {
        return new QuantOptions(weightBits, reduceRange, kinds(t.outputQuantized()), rounding, keepFloat, floatBudget, t, keepSlowInt8,
                quantizeLogInputs);
    }

    /** With a Q/DQ on the outputs of these kinds (the target's choice otherwise). */
    public QuantOptions withOutputQuantized(Set<LayerKind> kinds) {
        return new QuantOptions(weightBits, reduceRange, kinds, rounding, keepFloat, floatBudget, target, keepSlowInt8,
                quantizeLogInputs);
    }

    /** The layer kinds among {@code opTypes}. */
    public static Set<LayerKind> kinds(Set<String> opTypes) {
        EnumSet<LayerKind> k = EnumSet.noneOf(LayerKind.class);
        for (String op : opTypes) {
            LayerKind kind = LayerKind.of(op);
            if (kind != null) {
                k.add(kind);
            }
        }
        return k;
    }

    /** Whether {@code kind}'s weights take one scale per output channel on the target (one per tensor otherwise). */
    public boolean perChannel(LayerKind kind) {
        return target.perChannel(kind.opType);
    }

    public static QuantOptions defaults() {
        return new QuantOptions(8, false, kinds(Target.cpu().outputQuantized()), WeightRounding.AUTO, Set.of(), 0,
                Target.cpu(), false);
    }

    /**
     * The largest integer weight magnitude: 127 at 8 bits, 63 with reduce_range or on a target whose
     * grid is 7 bits (its qmax 63); fewer bits stay as asked.
     */
    public int weightQmax() {
        int targetBits = 33 - Integer.numberOfLeadingZeros(target.weights().qmax());
        int bits = Math.min(weightBits, targetBits);
        if (reduceRange) {
            bits = Math.min(bits, weightBits - 1);
        }
        return (1 << (bits - 1)) - 1;
    }
}
