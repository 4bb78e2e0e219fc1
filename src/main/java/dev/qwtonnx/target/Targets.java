package dev.qwtonnx.target;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.target.Target.Activations;
import dev.qwtonnx.target.Target.Bias;
import dev.qwtonnx.target.Target.Runtime;
import dev.qwtonnx.target.Target.Weights;
import java.util.List;
import java.util.Set;

/**
 * The built-in targets. Each value's reason and source are in docs/decisions/0013-targets.md; the
 * source of each accelerator value is cited next to it (paths in microsoft/onnxruntime unless named
 * otherwise). What a target's provider accepts beyond the form written here is in {@link TargetRules}.
 */
final class Targets {
    private Targets() {
    }

    private static final Set<String> WEIGHTED = Set.of("Conv", "MatMul", "Gemm");

    // onnxruntime/python/tools/quantization/quantize.py (quantize_static docstring, "Choosing parameters
    // for CPU inference"): x86 with VNNI takes QUInt8 activations with full-range QInt8 weights
    // (reduce_range=False); qdq_selectors.cc (ConvNodeGroupSelector::Check) fuses u8 activations with
    // u8 or s8 weights and an int32 bias.
    static final Target CPU_VNNI = new Target("cpu-vnni",
            "ORT CPU on x86-64 with VNNI (AVX512-VNNI or AVX-VNNI): u8 activations, full-range s8 weights",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.ORT_CPU);

    // Chosen by measurement (docs/decisions/0013-targets.md, "cpu default form"; docs/cpu-forms.md):
    // ORT's AVX2 u8*s8 kernel (mlas qgemm_kernel_avx2, vpmaddubsw) sums two u8*s8 products in int16
    // with saturation, exact only while 2*255*|w| <= 32767, i.e. |w| <= 64. Weights on ±63 cannot
    // saturate and keep the fast u8*s8 kernels (QLinearConv's s8 path, MatMulIntegerToFloat/QGemm):
    // the full 8-bit grid stored u8 (u8*u8 kernels widen first) kept MiniLM 0.0013 sentence cosine
    // closer to float but made it 1.6x slower at one thread (0.71x float instead of 0.44x), which is not
    // what a user quantizes for. quantize.py's guidance for x86 without VNNI is reduce_range=True
    // (7-bit weights) for the same reason.
    static final Target CPU = new Target("cpu",
            "ORT CPU on any x86-64 or ARM64 CPU: u8 activations, s8 weights on 7 bits "
                    + "(no int16 saturation without VNNI)",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 63, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.ORT_CPU_ANY);

    // quantize.py's guidance for ARM: symmetric QInt8 activations and weights are "often preferred",
    // QUInt8 activations "also work". ARM's kernels (udot/sdot, ummla, or NEON without the dot
    // product) widen before they add, so no form saturates: full-range u8*s8 measures the same under
    // qemu-aarch64 -cpu max and cortex-a72 as on x86 with VNNI (docs/cpu-forms.md).
    static final Target ARM64 = new Target("arm64",
            "ORT CPU on ARM64 (NEON; dot-product kernels where the CPU has them)",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.QEMU_ARM64);

    // WebAssembly has no vpmaddubsw: the full-range form measures the same in onnxruntime-web under
    // Node as on x86 with VNNI (RuntimeCheckTest), so it keeps the 8-bit grid.
    static final Target WASM = new Target("wasm",
            "onnxruntime-web (WebAssembly CPU)",
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"), false, true, 13, true, true, Runtime.NODE_WASM);

    static final Target TENSORRT = new Target("tensorrt",
            "TensorRT explicit quantization: symmetric s8 activations, float bias, Q/DQ on inputs only",
            // NVIDIA TensorRT docs, "Working with Quantized Types": symmetric INT8, zero point 0; quantize.py:
            // "use symmetric QuantType.QInt8 for both activations and weights when targeting GPU/TRT".
            new Activations(DataType.INT8, true),
            // TensorRT explicit quantization: INT8 weights on [-127, 127], one scale per output channel
            // on Convolution, Deconvolution and the GEMM-like layers.
            new Weights(DataType.INT8, 127, Set.of("Conv", "ConvTranspose", "MatMul", "Gemm")),
            // TensorRT "Quantized Weights": a DequantizeLinear takes INT8/FP8/INT4/FP4, not int32; the
            // float bias is fused into the quantized layer.
            Bias.FLOAT,
            // TensorRT Q/DQ placement: quantize the inputs of weighted ops, not their outputs;
            // python/tools/quantization/qdq_quantizer.py: "In TRT, it's not recommended to quantize
            // outputs for weighted ops such as Conv, Matmul, Gemm".
            Set.of(),
            // TensorRT Q/DQ placement: quantize the residual input of an element-wise Add so it fuses.
            true,
            // onnx-tensorrt parses the default ONNX domain; MatMulIntegerToFloat/QGemm are ORT contrib ops.
            false, 13,
            // TensorRT parses If and Loop; dynamic dimensions through optimization profiles.
            true, true, Runtime.RULES_ONLY);

    static final Target QNN = new Target("qnn",
            "Qualcomm QNN HTP: u8 (or u16) activations, per-channel weights on Conv/ConvTranspose only, static shapes",
            // python/tools/quantization/execution_providers/qnn/quant_config.py (get_qnn_qdq_config):
            // activation_type defaults to QUInt8, asymmetric (activation_symmetric=False).
            new Activations(DataType.UINT8, false),
            // quant_config.py: per_channel quantizes Conv input[1] on axis 0 and ConvTranspose input[1]
            // on axis 1; _process_matmul: "QNN does not support per-channel MatMul". Signed weights
            // are symmetric (weight_symmetric defaults to True for QInt8). (The tool also writes
            // per-channel Gemm weights, which the rule checker takes.)
            new Weights(DataType.INT8, 127, Set.of("Conv", "ConvTranspose")),
            Bias.INT32,
            // quant_config.py quantizes every op type's output (op_types_to_quantize: all but Cast).
            WEIGHTED, true,
            // QNN op builders take the default domain; com.microsoft Q/DQ only for 16-bit before opset
            // 21 (quant_config.py: UseQDQContribOps), which TargetRules allows.
            false, 13,
            // qnn/builder/op_builder_factory.cc registers no If/Loop/Scan builder; qnn-abi/builder/
            // qnn_model.cc (ParseGraphInputOrOutput): "Dynamic shape is not supported yet".
            false, false, Runtime.RULES_ONLY);

    static final Target XNNPACK = new Target("xnnpack",
            "XNNPACK: s8 activations with s8 per-channel weights on Conv (u8 x u8 also taken)",
            // providers/xnnpack/nn/conv_base.cc (GetConvCompType): qs8 (s8 x s8), qc8 (s8 x s8
            // per-channel, zero point 0) or qu8 (u8 x u8); u8 x s8 is not taken.
            new Activations(DataType.INT8, false),
            // detail/utils.cc (GetTensorQuantType): per-channel only for INT8 weights with zero point 0;
            // conv_base.cc (IsValidQuantConv): not for ConvTranspose. XNNPACK's MatMul and Gemm are float
            // only (math/matmul.cc, math/gemm.cc): they stay float, for XNNPACK to run them.
            new Weights(DataType.INT8, 127, Set.of("Conv"), Set.of("Conv")),
            // conv_base.cc (TryGetConvBiasDtype): an int32 constant bias.
            Bias.INT32,
            // conv_base.cc (IsValidQuantConv): a quantized Conv's output is quantized too.
            Set.of("Conv", "ConvTranspose"), false,
            false, 13, true, true, Runtime.RULES_ONLY);

    static final Target NNAPI = new Target("nnapi",
            "Android NNAPI: u8 activations, s8 weights with zero point 0, per-channel weights only on Conv, static shapes",
            // nnapi_builtin/builders/op_builder_helpers.cc (IsQuantizedIOSupported): u8 for every quantized
            // input and output; s8 only as the weight of a quantized Conv/MatMul/Gemm ("u8s8").
            new Activations(DataType.UINT8, false),
            // op_builder_helpers.cc (IsQuantizationScaleSupported): per-channel only for u8s8 Conv (API 29+),
            // never MatMul; (IsQuantizationZeroPointSupported): s8 weight zero points all 0.
            new Weights(DataType.INT8, 127, Set.of("Conv")),
            Bias.INT32,
            // IsQuantizedIOSupported checks the outputs of a QDQ node unit: they are quantized (u8).
            WEIGHTED, false,
            false, 13,
            // The NNAPI op builders have no If/Loop/Scan; docs tutorials/mobile/helpers/make-dynamic-shape-fixed:
            // "NNAPI and CoreML do not support dynamic input shapes".
            false, false, Runtime.RULES_ONLY);

    static final Target OPENVINO = new Target("openvino",
            "OpenVINO: an op runs in low precision when all its inputs are quantized",
            // providers/openvino/qdq_transformations/qdq_stripping.cc (CheckDQRuleSet, CheckQRuleSet): 8-bit
            // Q/DQ kept, 16-bit ones dropped (the op runs in float).
            new Activations(DataType.UINT8, false), new Weights(DataType.INT8, 127, WEIGHTED), Bias.INT32,
            Set.of("Conv"),
            // OpenVINO docs, "Low Precision IR": an op runs in INT8 only when its inputs are quantized;
            // qdq_stripping.cc keeps every DQ of an Add without constant inputs.
            true,
            // openvino/ov_versions/data_ops.cc (supported_op_mode): default-domain ops, If and Loop included.
            false, 13, true, true, Runtime.RULES_ONLY);

    static final List<Target> ALL = List.of(CPU, CPU_VNNI, ARM64, WASM, TENSORRT, QNN, XNNPACK, NNAPI, OPENVINO);
}
