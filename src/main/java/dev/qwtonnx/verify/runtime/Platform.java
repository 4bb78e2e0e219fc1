package dev.qwtonnx.verify.runtime;

/**
 * A runtime this machine can run a model on, natively or emulated. {@code Target.Runtime} names
 * how a target is checked; this names each concrete run: QEMU_ARM64 is two of them, with and
 * without the int8 dot-product extension, because ORT picks different kernels for each.
 */
public enum Platform {
    /** ORT's CPU provider on this machine, in a JVM of its own. */
    NATIVE("ORT CPU, this machine"),
    /** This machine's JVM and ORT under qemu-x86_64 -cpu Haswell: AVX2, no VNNI. */
    X86_AVX2("ORT CPU under qemu-x86_64 -cpu Haswell (AVX2, no VNNI)"),
    /** ORT's own aarch64 library in an arm64 JVM under qemu-aarch64 -cpu max (with dot product). */
    ARM64_DOTPROD("ORT CPU aarch64 under qemu-aarch64 -cpu max (dot product)"),
    /** As {@link #ARM64_DOTPROD} with -cpu cortex-a72: ARMv8.0, no dot product. */
    ARM64_NO_DOTPROD("ORT CPU aarch64 under qemu-aarch64 -cpu cortex-a72 (no dot product)"),
    /** onnxruntime-web's WebAssembly backend in Node. */
    WASM("onnxruntime-web (WebAssembly) in Node");

    private final String description;

    Platform(String description) {
        this.description = description;
    }

    public String description() {
        return description;
    }
}
