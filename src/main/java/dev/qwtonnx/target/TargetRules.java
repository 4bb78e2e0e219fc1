package dev.qwtonnx.target;

import dev.qwtonnx.model.DataType;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A target's rules: the ones its {@link Target} value implies (activation type, per-channel ops,
 * bias form, Q/DQ placement, domains, opset, subgraphs, shapes), each with the source that says so
 * for this target, plus what its provider accepts beyond the form we write and its own extra rules.
 * Sources are paths in microsoft/onnxruntime unless named otherwise.
 */
final class TargetRules {
    // Rule ids the checker knows.
    static final String ACTIVATION_TYPE = "activation-type";
    static final String ACTIVATION_ZERO_POINT = "activation-zero-point";
    static final String Q16_OPSET = "q16-opset";
    static final String WEIGHTED_INPUTS = "weighted-inputs";
    static final String WEIGHT_PER_CHANNEL = "weight-per-channel";
    static final String WEIGHT_RANGE = "weight-range";
    static final String BIAS_FORM = "bias-form";
    static final String BIAS_SCALE = "bias-scale";
    static final String OUTPUT_QUANTIZED = "output-quantized";
    static final String RESIDUAL_ADD = "residual-add";
    static final String MICROSOFT_DOMAIN = "microsoft-domain";
    static final String OPSET = "opset";
    static final String SUBGRAPH = "subgraph";
    static final String DYNAMIC_SHAPE = "dynamic-shape";
    static final String CPU_S8_ACTIVATION = "cpu.s8-activation";
    static final String XNNPACK_U8S8 = "xnnpack.u8s8";
    static final String XNNPACK_PER_CHANNEL = "xnnpack.per-channel";
    static final String XNNPACK_QDQ_MATMUL = "xnnpack.qdq-matmul";
    static final String NNAPI_WEIGHT_ZERO_POINT = "nnapi.weight-zero-point";
    static final String TENSORRT_WEIGHT_SYMMETRIC = "tensorrt.weight-symmetric";
    static final String QNN_PER_CHANNEL_AXIS = "qnn.per-channel-axis";

    private static final String QUANTIZE_PY = "onnxruntime/python/tools/quantization/quantize.py (quantize_static "
            + "docstring, \"Choosing parameters for CPU inference\")";
    private static final String CPU_CONV = "onnxruntime/core/optimizer/qdq_transformer/selectors_actions/"
            + "qdq_selectors.cc (ConvNodeGroupSelector::Check)";
    private static final String ONNX_QLINEARCONV = "ONNX operator spec, QLinearConv input B (onnx/defs/nn/defs.cc): "
            + "\"Bias must be quantized using scale = x_scale * w_scale and zero_point = 0\"; ORT's QDQ Conv fusion "
            + "(qdq_actions.cc) passes the int32 bias to QLinearConv as stored";
    private static final String ONNX_Q16 = "ONNX operator spec, QuantizeLinear/DequantizeLinear: int16/uint16 from "
            + "opset 21 (quant_config.py for QNN: \"ONNX opset < 21 does not support 16-bit quantization, so must "
            + "use 'com.microsoft' domain\")";
    private static final String XNN_CONV = "onnxruntime/core/providers/xnnpack/nn/conv_base.cc (GetConvCompType, "
            + "IsValidQuantConv)";
    private static final String XNN_TYPES = "onnxruntime/core/providers/xnnpack/detail/utils.cc (GetTensorQuantType)";
    private static final String XNN_OPS = "onnxruntime/core/providers/xnnpack/detail/utils.cc (GetQuantizedOpType: "
            + "QDQ Conv, ConvTranspose, MaxPool, AveragePool, Softmax, Resize); xnnpack/math/matmul.cc, gemm.cc "
            + "(float only)";
    private static final String NNAPI_IO = "onnxruntime/core/providers/nnapi/nnapi_builtin/builders/"
            + "op_builder_helpers.cc (IsQuantizedIOSupported)";
    private static final String NNAPI_SCALE = "onnxruntime/core/providers/nnapi/nnapi_builtin/builders/"
            + "op_builder_helpers.cc (IsQuantizationScaleSupported)";
    private static final String NNAPI_ZP = "onnxruntime/core/providers/nnapi/nnapi_builtin/builders/"
            + "op_builder_helpers.cc (IsQuantizationZeroPointSupported)";
    private static final String QNN_CONFIG = "onnxruntime/python/tools/quantization/execution_providers/qnn/"
            + "quant_config.py (get_qnn_qdq_config)";
    private static final String QNN_MATMUL = "onnxruntime/python/tools/quantization/execution_providers/qnn/"
            + "quant_config.py (_process_matmul: \"QNN does not support per-channel MatMul\")";
    private static final String QNN_OPS = "onnxruntime/core/providers/qnn/builder/op_builder_factory.cc (no If, Loop "
            + "or Scan builder)";
    private static final String QNN_SHAPES = "onnxruntime/core/providers/qnn-abi/builder/qnn_model.cc "
            + "(ParseGraphInputOrOutput: \"Dynamic shape is not supported yet\")";
    private static final String NNAPI_OPS = "onnxruntime/core/providers/nnapi/nnapi_builtin/builders/"
            + "op_builder_factory.cc (no If, Loop or Scan builder)";
    private static final String NNAPI_SHAPES = "onnxruntime docs, tutorials/mobile/helpers/make-dynamic-shape-fixed: "
            + "\"NNAPI and CoreML do not support dynamic input shapes\"";
    private static final String OV_STRIP = "onnxruntime/core/providers/openvino/qdq_transformations/qdq_stripping.cc "
            + "(CheckDQRuleSet, CheckQRuleSet)";
    private static final String OV_INT8 = "OpenVINO docs, \"Low Precision IR (INT8 Inference)\": \"For an operation to "
            + "be executed in INT8, it must have FakeQuantize operations as inputs\"; " + OV_STRIP;
    private static final String OV_OPS = "onnxruntime/core/providers/openvino/ov_versions/data_ops.cc "
            + "(supported_op_mode)";
    private static final String TRT_Q = "NVIDIA TensorRT docs, \"Working with Quantized Types\": symmetric INT8 "
            + "quantization (zero point 0), weights on [-127, 127]; " + QUANTIZE_PY
            + ": symmetric QInt8 activations and weights for TRT";
    private static final String TRT_PLACEMENT = "NVIDIA TensorRT docs, explicit quantization, Q/DQ layer placement: "
            + "quantize all inputs of weighted operations and the residual input of an element-wise addition";
    private static final String TRT_WEIGHTS = "NVIDIA TensorRT docs, explicit quantization, \"Quantized Weights\": "
            + "INT8, FP8, INT4 or FP4 through a DequantizeLinear (not int32); a float bias is fused";
    private static final String TRT_DOMAIN = "onnx-tensorrt parses the default ONNX domain; com.microsoft ops are "
            + "ORT contrib kernels";

    final Target target;
    /** Activation element types the target's provider takes. */
    final Set<DataType> activationTypes;
    /** Whether com.microsoft QuantizeLinear/DequantizeLinear (16-bit before opset 21) are taken. */
    final boolean microsoftQdq;
    /** Whether a float bias on a quantized Conv/Gemm breaks what the provider runs. */
    final boolean checkBiasForm;
    /** Whether int8 weights are checked against the target's grid (±qmax). */
    final boolean checkWeightRange;
    /** Op types whose per-channel weights the provider takes beyond the target's own form. */
    final Set<String> perChannelAlsoTaken;
    private final Map<String, Rule> rules = new LinkedHashMap<>();

    private TargetRules(Target target, Set<DataType> activationTypes, boolean microsoftQdq, boolean checkBiasForm,
            boolean checkWeightRange) {
        this.target = target;
        this.activationTypes = activationTypes;
        this.microsoftQdq = microsoftQdq;
        this.checkBiasForm = checkBiasForm;
        this.checkWeightRange = checkWeightRange;
        // ORT's own QNN configuration (get_qnn_qdq_config(per_channel=True)) writes per-channel Gemm
        // weights (QDQGemm in quantization/operators/gemm.py), so the checker takes them for qnn.
        this.perChannelAlsoTaken = target.name().equals("qnn") ? Set.of("Gemm") : Set.of();
    }

    static TargetRules of(Target t) {
        String name = t.name();
        boolean ortCpu = name.equals("cpu") || name.equals("cpu-vnni") || name.equals("arm64") || name.equals("wasm");
        EnumSet<DataType> acts = EnumSet.of(t.activations().type());
        switch (name) {
            // ORT CPU fuses u8 and s8 QDQ groups (qdq_selectors.cc); XNNPACK takes qu8 and qs8
            // (conv_base.cc); OpenVINO keeps 8-bit Q/DQ of either sign (qdq_stripping.cc).
            case "cpu", "cpu-vnni", "arm64", "wasm", "xnnpack", "openvino" -> acts.addAll(List.of(DataType.UINT8,
                    DataType.INT8));
            // quant_config.py: QUInt8 by default, QUInt16 for A16W8.
            case "qnn" -> acts.addAll(List.of(DataType.UINT8, DataType.UINT16));
            default -> {
            }
        }
        boolean range = t.weights().qmax() < 127 || name.equals("tensorrt");
        TargetRules r = new TargetRules(t, Set.copyOf(acts), name.equals("qnn"),
                ortCpu || name.equals("xnnpack") || name.equals("nnapi"), range);

        r.add(ACTIVATION_TYPE, "activation Q/DQ are " + names(acts), switch (name) {
            case "tensorrt" -> TRT_Q;
            case "qnn" -> QNN_CONFIG;
            case "xnnpack" -> XNN_CONV;
            case "nnapi" -> NNAPI_IO;
            case "openvino" -> OV_STRIP + ": 16-bit Q/DQ are dropped and the op runs in float";
            default -> CPU_CONV + "; " + QUANTIZE_PY;
        });
        if (t.activations().symmetric()) {
            r.add(ACTIVATION_ZERO_POINT, "activation zero points are 0 (symmetric)", TRT_Q);
        }
        r.add(Q16_OPSET, "16-bit QuantizeLinear/DequantizeLinear need opset 21"
                + (r.microsoftQdq ? " or the com.microsoft domain" : ""), ONNX_Q16);
        r.add(WEIGHTED_INPUTS, "a quantized weight's op has its activation input quantized too", switch (name) {
            case "tensorrt" -> TRT_PLACEMENT;
            case "openvino" -> OV_INT8;
            case "xnnpack" -> XNN_CONV;
            case "nnapi" -> NNAPI_IO;
            case "qnn" -> QNN_CONFIG;
            default -> CPU_CONV + " (every input of the node through a DequantizeLinear)";
        });
        // ORT CPU and OpenVINO take per-channel weights on every weighted op; XNNPACK's own rule says where.
        if (name.equals("tensorrt") || name.equals("qnn") || name.equals("nnapi")) {
            java.util.TreeSet<String> per = new java.util.TreeSet<>(t.weights().perChannel());
            if (name.equals("qnn")) {
                per.add("Gemm");
            }
            r.add(WEIGHT_PER_CHANNEL, "one weight scale per output channel only on " + sorted(per), switch (name) {
                        case "tensorrt" -> TRT_Q;
                        case "qnn" -> QNN_MATMUL + "; Gemm too, as ORT's tool writes it for QNN";
                        default -> NNAPI_SCALE;
                    });
        }
        if (range) {
            r.add(WEIGHT_RANGE, "int8 weights stay on ±" + t.weights().qmax(), ortCpu
                    ? QUANTIZE_PY + ": on x86 without VNNI, u8·s8 pair sums saturate int16 in ORT's AVX2 kernel; "
                            + "reduce_range (7-bit weights) avoids it"
                    : name.equals("tensorrt") ? TRT_Q : "this target's form (Target.weights().qmax())");
        }
        if (t.bias() == Target.Bias.INT32 && r.checkBiasForm) {
            r.add(BIAS_FORM, "a quantized Conv/Gemm's bias is int32 through a DequantizeLinear", switch (name) {
                case "xnnpack" -> "onnxruntime/core/providers/xnnpack/nn/conv_base.cc (TryGetConvBiasDtype)";
                case "nnapi" -> NNAPI_IO;
                default -> CPU_CONV;
            });
        }
        if (t.bias() == Target.Bias.FLOAT) {
            r.add(BIAS_FORM, "a quantized layer's bias stays float (no int32 DequantizeLinear)", TRT_WEIGHTS);
        }
        if (t.bias() == Target.Bias.INT32) {
            r.add(BIAS_SCALE, "an int32 bias has scale x_scale·w_scale[c] and zero point 0", ONNX_QLINEARCONV);
        }
        // OpenVINO keeps or drops a Conv's output Q as its neighbours need (qdq_stripping.cc): no rule there.
        if (!t.outputQuantized().isEmpty() && !name.equals("openvino")) {
            r.add(OUTPUT_QUANTIZED, "the outputs of quantized " + sorted(t.outputQuantized()) + " go through a Q/DQ",
                    switch (name) {
                        case "xnnpack" -> XNN_CONV + ": the output of a quantized Conv is quantized";
                        case "nnapi" -> NNAPI_IO + ": the outputs of a QDQ node unit are u8";
                        case "qnn" -> QNN_CONFIG + " (quantizes every op's output)";
                        default -> CPU_CONV + " (a Conv's output Q makes the QLinearConv group)";
                    });
        }
        if (t.addInputs()) {
            r.add(RESIDUAL_ADD, "both inputs of a residual Add (a weighted layer's output plus another branch) are quantized",
                    name.equals("tensorrt") ? TRT_PLACEMENT : name.equals("openvino") ? OV_INT8 : QNN_CONFIG);
        }
        if (!t.microsoftDomain()) {
            r.add(MICROSOFT_DOMAIN, "no com.microsoft operators" + (r.microsoftQdq ? " but 16-bit Q/DQ" : ""),
                    switch (name) {
                        case "tensorrt" -> TRT_DOMAIN;
                        case "qnn" -> QNN_OPS + "; " + QNN_CONFIG + " (UseQDQContribOps)";
                        case "xnnpack" -> XNN_OPS;
                        case "nnapi" -> NNAPI_OPS;
                        case "openvino" -> OV_OPS;
                        default -> "this target's form (Target.microsoftDomain())";
                    });
        }
        r.add(OPSET, "default-domain opset at least " + t.minOpset(),
                t.minOpset() >= 21 ? ONNX_Q16 : "this target's form (Target.minOpset())");
        if (!t.subgraphs()) {
            r.add(SUBGRAPH, "no If, Loop or Scan", name.equals("nnapi") ? NNAPI_OPS : QNN_OPS);
        }
        if (!t.dynamicShapes()) {
            r.add(DYNAMIC_SHAPE, "every graph input dimension is fixed", name.equals("nnapi") ? NNAPI_SHAPES
                    : QNN_SHAPES);
        }
        // The provider's own rules.
        if (ortCpu) {
            r.add(CPU_S8_ACTIVATION, "s8 activations pair with s8 weights", CPU_CONV
                    + ": \"if (dt_input == INT8) { if (!int8_allowed_ || dt_weight != dt_input) return false; }\"");
        }
        switch (name) {
            case "xnnpack" -> {
                r.add(XNNPACK_U8S8, "u8 activations with s8 weights is not a pair XNNPACK takes (it takes u8·u8 or s8·s8)",
                        XNN_CONV + ": \"u8s8 is not support\"");
                r.add(XNNPACK_PER_CHANNEL, "per-channel weights are s8 with zero point 0, with s8 activations, on "
                        + "Conv only", XNN_TYPES + "; " + XNN_CONV);
                r.add(XNNPACK_QDQ_MATMUL, "XNNPACK runs MatMul and Gemm in float only; a quantized one stays on ORT's "
                        + "CPU provider", XNN_OPS);
            }
            case "nnapi" -> r.add(NNAPI_WEIGHT_ZERO_POINT, "s8 weights have zero point 0", NNAPI_ZP);
            case "tensorrt" -> r.add(TENSORRT_WEIGHT_SYMMETRIC, "weights are s8 with zero point 0", TRT_Q);
            case "qnn" -> r.add(QNN_PER_CHANNEL_AXIS, "per-channel weights on Conv use axis 0, on ConvTranspose axis 1",
                    QNN_CONFIG + " (per_channel: Conv input[1] axis 0, ConvTranspose input[1] axis 1)");
            default -> {
            }
        }
        return r;
    }

    private void add(String id, String text, String source) {
        rules.put(id, new Rule(id, text, source));
    }

    /** The rule {@code id}, or null when it does not apply to this target. */
    Rule rule(String id) {
        return rules.get(id);
    }

    List<Rule> list() {
        return List.copyOf(rules.values());
    }

    private static String names(Set<DataType> types) {
        List<String> out = new ArrayList<>();
        for (DataType d : types) {
            out.add(RuleChecker.lower(d));
        }
        return String.join(" or ", out);
    }

    private static String sorted(Set<String> ops) {
        return ops.isEmpty() ? "no op" : String.join(", ", new java.util.TreeSet<>(ops));
    }
}
