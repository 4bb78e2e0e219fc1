package dev.qwtonnx.target;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Where a quantized model is meant to run, as data every stage reads: the integer types and forms
 * the target's kernels take, where Q/DQ go, which operator domains and graph features it accepts,
 * and how this machine can check a model for it. A target is a value, not a branch in each pass.
 *
 * @param name            the CLI name ({@code --target NAME})
 * @param description     one line for the help and the summary
 * @param activations     activation element type and symmetry
 * @param weights         weight element type, grid and per-channel granularity per operator
 * @param bias            how a layer's bias is stored
 * @param outputQuantized op types whose output gets a Q/DQ (a float output otherwise)
 * @param addInputs       Q/DQ on both inputs of an Add that joins two quantized branches (residual Adds)
 * @param microsoftDomain whether com.microsoft operators (MatMulIntegerToFloat, QGemm) may be used
 * @param minOpset        the lowest default-domain opset the target's Q/DQ form needs
 * @param subgraphs       whether If/Loop/Scan bodies are quantized (and accepted)
 * @param dynamicShapes   whether inputs with dynamic dimensions are accepted
 * @param runtime         how this machine checks a model for the target
 */
public record Target(String name, String description, Activations activations, Weights weights, Bias bias,
        Set<String> outputQuantized, boolean addInputs, boolean microsoftDomain, int minOpset, boolean subgraphs,
        boolean dynamicShapes, Runtime runtime) {

    /** Activation element type; symmetric means zero point 0 (int8) or mid-range, as the type has it. */
    public record Activations(DataType type, boolean symmetric) {
        public Activations {
            if (type != DataType.UINT8 && type != DataType.INT8 && type != DataType.UINT16 && type != DataType.INT16) {
                throw new IllegalArgumentException("activations are 8- or 16-bit integers, not " + type);
            }
        }

        public int bits() {
            return type.bytes * 8;
        }
    }

    /**
     * Weights: element type (INT8, or UINT8 with zero point 128 where symmetric), the largest
     * magnitude on the grid at 8 bits ({@code qmax}: 127, or 63 where a kernel's pair sums must not
     * saturate), the op types that take one scale per output channel (the others: one per tensor),
     * and the op types the target runs quantized at all (the others stay float).
     */
    public record Weights(DataType type, int qmax, Set<String> perChannel, Set<String> quantized) {
        /** Every weighted op type quantized. */
        public static final Set<String> ALL_OPS = Set.of("Conv", "ConvTranspose", "MatMul", "Gemm");

        public Weights(DataType type, int qmax, Set<String> perChannel) {
            this(type, qmax, perChannel, ALL_OPS);
        }

        public Weights {
            if (type != DataType.INT8 && type != DataType.UINT8) {
                throw new IllegalArgumentException("weights are 8-bit integers, not " + type);
            }
            perChannel = sorted(perChannel);
            quantized = sorted(quantized);
        }
    }

    /** A layer's bias: int32 at x_scale·w_scale[c] through a DequantizeLinear, or left float. */
    public enum Bias {
        INT32, FLOAT
    }

    /** How this machine checks a model for the target. */
    public enum Runtime {
        /** ORT's CPU provider, here. */
        ORT_CPU,
        /** ORT's CPU provider on any CPU: here, and x86 AVX2 and ARM64 under qemu-user. */
        ORT_CPU_ANY,
        /** ORT's CPU provider under qemu-x86_64 -cpu Haswell (AVX2, no VNNI). */
        QEMU_X86_AVX2,
        /** ORT's own aarch64 library under qemu-aarch64. */
        QEMU_ARM64,
        /** onnxruntime-web (WebAssembly) in Node. */
        NODE_WASM,
        /** No runtime here: checked against the rules, fidelity by emulating the arithmetic on ORT CPU. */
        RULES_ONLY
    }

    /**
     * The default target, {@code cpu}. A method, not a constant: {@link Targets} builds its values
     * with this class's constructor, and a constant here read during that would be null.
     */
    public static Target cpu() {
        return Targets.CPU;
    }

    public Target {
        outputQuantized = sorted(outputQuantized);
    }

    /** Whether the model runs on ORT's CPU provider (kernels fused from QDQ by ORT's CPU transformers). */
    public boolean ortCpu() {
        return runtime != Runtime.RULES_ONLY;
    }

    /** Whether the target runs {@code opType} layers quantized (the others are left float). */
    public boolean quantizes(String opType) {
        return weights.quantized().contains(opType);
    }

    public boolean perChannel(String opType) {
        return weights.perChannel().contains(opType);
    }

    /** This target with {@code bits}-bit activations (8 or 16), same signedness. */
    public Target withActivationBits(int bits) {
        if (bits != 8 && bits != 16) {
            throw new QwtException("activation bits must be 8 or 16, got " + bits);
        }
        if (bits == activations.bits()) {
            return this;
        }
        boolean unsigned = activations.type() == DataType.UINT8 || activations.type() == DataType.UINT16;
        DataType t = bits == 16 ? (unsigned ? DataType.UINT16 : DataType.INT16) : (unsigned ? DataType.UINT8 : DataType.INT8);
        // 16-bit QuantizeLinear/DequantizeLinear are in the default domain from opset 21.
        return new Target(name, description, new Activations(t, activations.symmetric()), weights, bias, outputQuantized,
                addInputs, microsoftDomain, bits == 16 ? Math.max(minOpset, 21) : minOpset, subgraphs, dynamicShapes, runtime);
    }

    /** This target with weights on a grid of at most {@code qmax}. */
    public Target withWeightQmax(int qmax) {
        return new Target(name, description, activations, new Weights(weights.type(), qmax, weights.perChannel(), weights.quantized()), bias,
                outputQuantized, addInputs, microsoftDomain, minOpset, subgraphs, dynamicShapes, runtime);
    }

    /** This target with a Q/DQ on the outputs of these op types. */
    public Target withOutputQuantized(Set<String> opTypes) {
        return new Target(name, description, activations, weights, bias, opTypes, addInputs, microsoftDomain, minOpset,
                subgraphs, dynamicShapes, runtime);
    }

    /** The target named {@code name} (case-insensitive); a one-line error naming the known ones otherwise. */
    public static Target named(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (Target t : Targets.ALL) {
            if (t.name.equals(n)) {
                return t;
            }
        }
        throw new QwtException("unknown target '" + name + "'; known: " + String.join(", ", names()));
    }

    public static List<String> names() {
        return Targets.ALL.stream().map(Target::name).toList();
    }

    /**
     * An immutable copy iterating in sorted order: the target is written into the output's provenance,
     * and {@code Set.copyOf}'s order changes from one JVM to the next, which would change the bytes.
     */
    static Set<String> sorted(Set<String> s) {
        return java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(s));
    }
}
