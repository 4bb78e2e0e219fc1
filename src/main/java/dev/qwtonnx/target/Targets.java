package dev.qwtonnx.target;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.target.Target.Activations;
import dev.qwtonnx.target.Target.Bias;
import dev.qwtonnx.target.Target.Runtime;
import dev.qwtonnx.target.Target.Weights;
import java.util.List;
import java.util.Set;

/** The built-in targets. Each value's reason and source are in docs/decisions/0013-targets.md. */
final class Targets {
    private Targets() {
    }

    private static final Set<String> WEIGHTED = Set.of("Conv", "MatMul", "Gemm");

    static final Target CPU_VNNI = new Target("cpu-vnni",
            "ORT CPU on x86-64 with VNNI (AVX512-VNNI or AVX-VNNI): u8 activations, full-range s8 weights",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.ORT_CPU);

    static final Target CPU = new Target("cpu",
            "ORT CPU on any x86-64 or ARM64 CPU",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.ORT_CPU);

    static final Target ARM64 = new Target("arm64",
            "ORT CPU on ARM64 (NEON; dot-product kernels where the CPU has them)",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.QEMU_ARM64);

    static final Target WASM = new Target("wasm",
            "onnxruntime-web (WebAssembly CPU)",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.NODE_WASM);

    static final Target TENSORRT = new Target("tensorrt",
            "TensorRT explicit quantization: symmetric s8 activations, float bias, Q/DQ on inputs only",
            new Activations(DataType.INT8, true), new Weights(DataType.INT8, 127, WEIGHTED), Bias.FLOAT,
            Set.of(), true, false, 13, true, true, Runtime.RULES_ONLY);

    static final Target QNN = new Target("qnn",
            "Qualcomm QNN HTP: u8 (or u16) activations, per-channel weights on Conv only, static shapes",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, Set.of("Conv", "ConvTranspose")),
            Bias.INT32, WEIGHTED, true, false, 13, false, false, Runtime.RULES_ONLY);

    static final Target XNNPACK = new Target("xnnpack",
            "XNNPACK: s8 activations with s8 per-channel weights",
            new Activations(DataType.INT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            WEIGHTED, false, false, 13, true, true, Runtime.RULES_ONLY);

    static final Target NNAPI = new Target("nnapi",
            "Android NNAPI: u8 activations, per-channel weights only on Conv",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, Set.of("Conv")), Bias.INT32,
            WEIGHTED, false, false, 13, false, false, Runtime.RULES_ONLY);

    static final Target OPENVINO = new Target("openvino",
            "OpenVINO: an op runs in low precision when all its inputs are quantized",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), true, false, 13, true, true, Runtime.RULES_ONLY);

    static final List<Target> ALL = List.of(CPU, CPU_VNNI, ARM64, WASM, TENSORRT, QNN, XNNPACK, NNAPI, OPENVINO);
}
