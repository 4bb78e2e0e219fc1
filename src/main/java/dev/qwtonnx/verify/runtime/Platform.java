package dev.qwtonnx.verify.runtime;

/**
 * A runtime this machine can run a model on, natively or emulated. {@code Target.Runtime} names
 * how a target is checked; this names each concrete run: QEMU_ARM64 is two of them, with and
 * without the int8 dot-product extension, because ORT picks different kernels for each.
 */
public enum Platform {
    /** ORT's CPU provider on this machine, in a JVM of its own. */
    NATIVE("ORT CPU, this machine", false),
    /** This machine's JVM and ORT under qemu-x86_64 -cpu Haswell: AVX2, no VNNI. */
    X86_AVX2("ORT CPU under qemu-x86_64 -cpu Haswell (AVX2, no VNNI)", true),
    /** ORT's own aarch64 library in an arm64 JVM under qemu-aarch64 -cpu max (with dot product). */
    ARM64_DOTPROD("ORT CPU aarch64 under qemu-aarch64 -cpu max (dot product)", true),
    /** As {@link #ARM64_DOTPROD} with -cpu cortex-a72: ARMv8.0, no dot product. */
    ARM64_NO_DOTPROD("ORT CPU aarch64 under qemu-aarch64 -cpu cortex-a72 (no dot product)", true),
    /** onnxruntime-web's WebAssembly backend in Node. */
    WASM("onnxruntime-web (WebAssembly) in Node", false);

    private final String description;
    private final boolean emulated;

    Platform(String description, boolean emulated) {
        this.description = description;
        this.emulated = emulated;
    }

    /**
     * Whether the platform's instructions are emulated (qemu-user): its latencies measure the
     * emulator's translation of each kernel, not the speed of the hardware.
     */
    public boolean emulated() {
        return emulated;
    }

    public String description() {
        return description;
    }
}
