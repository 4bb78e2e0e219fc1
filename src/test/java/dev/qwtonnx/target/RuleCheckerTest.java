package dev.qwtonnx.target;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Each rule fires on a tiny graph that breaks it and stays quiet on one that keeps it. */
class RuleCheckerTest {
    /** The rule ids a test below has made fire; every rule of every target must be among them. */
    private static final Set<String> FIRED = new HashSet<>();

    private static List<String> ids(Model m, Target t) {
        return RuleChecker.check(m, t).stream().map(v -> v.rule().id()).toList();
    }

    /** {@code rule} fires on {@code broken} for {@code target}, and not on {@code kept}. */
    private static void firesAndKeeps(String rule, Target target, Consumer<TinyQdq> broken, Consumer<TinyQdq> kept) {
        firesAndKeeps(rule, target, TinyQdq.conv(), broken, kept);
    }

    private static void firesAndKeeps(String rule, Target target, TinyQdq base, Consumer<TinyQdq> broken,
            Consumer<TinyQdq> kept) {
        TinyQdq b = copy(base);
        broken.accept(b);
        TinyQdq k = copy(base);
        kept.accept(k);
        List<Violation> vs = RuleChecker.check(b.build(), target);
        assertTrue(vs.stream().anyMatch(v -> v.rule().id().equals(rule)), rule + " should fire on " + target.name()
                + ": " + vs);
        Violation v = vs.stream().filter(x -> x.rule().id().equals(rule)).findFirst().orElseThrow();
        assertFalse(v.detail().isBlank());
        assertFalse(v.rule().source().isBlank());
        assertFalse(ids(k.build(), target).contains(rule), rule + " should stay quiet on " + target.name() + ": "
                + RuleChecker.check(k.build(), target));
        FIRED.add(rule);
    }

    private static TinyQdq copy(TinyQdq base) {
        TinyQdq t = new TinyQdq();
        t.op = base.op;
        t.opset = base.opset;
        t.act = base.act;
        t.actZeroPoint = base.actZeroPoint;
        t.actQuantized = base.actQuantized;
        t.qdqDomain = base.qdqDomain;
        t.weight = base.weight;
        t.perChannel = base.perChannel;
        t.axis = base.axis;
        t.weightZeroPoint = base.weightZeroPoint;
        t.weightMax = base.weightMax;
        t.bias = base.bias;
        t.outputQ = base.outputQ;
        t.dynamicInput = base.dynamicInput;
        return t;
    }

    private static void s8(TinyQdq t) {
        t.act = DataType.INT8;
        t.actZeroPoint = 0;
    }

    @Test
    void todaysCpuFormIsCleanForCpuVnni() {
        assertEquals(List.of(), RuleChecker.check(TinyQdq.conv().build(), Targets.CPU_VNNI));
    }

    @Test
    void activationType() {
        firesAndKeeps(TargetRules.ACTIVATION_TYPE, Targets.NNAPI, RuleCheckerTest::s8, t -> { });
    }

    @Test
    void activationZeroPoint() {
        firesAndKeeps(TargetRules.ACTIVATION_ZERO_POINT, Targets.TENSORRT, t -> {
            s8(t);
            t.actZeroPoint = 3;
        }, RuleCheckerTest::s8);
    }

    @Test
    void sixteenBitQdqNeedOpset21OrMicrosoftDomain() {
        Target a16 = Targets.QNN.withActivationBits(16);
        Consumer<TinyQdq> u16 = t -> {
            t.act = DataType.UINT16;
            t.actZeroPoint = 32768;
        };
        firesAndKeeps(TargetRules.Q16_OPSET, a16, u16, u16.andThen(t -> t.opset = 21));
        TinyQdq contrib = TinyQdq.conv();
        u16.accept(contrib);
        contrib.qdqDomain = "com.microsoft";
        List<String> got = ids(contrib.build(), a16);
        assertFalse(got.contains(TargetRules.Q16_OPSET), got.toString());
        assertFalse(got.contains(TargetRules.MICROSOFT_DOMAIN), "QNN takes com.microsoft Q/DQ: " + got);
        assertTrue(ids(contrib.build(), Targets.TENSORRT).contains(TargetRules.MICROSOFT_DOMAIN));
    }

    @Test
    void weightedInputs() {
        firesAndKeeps(TargetRules.WEIGHTED_INPUTS, Targets.CPU_VNNI, t -> t.actQuantized = false, t -> { });
    }

    @Test
    void weightPerChannel() {
        firesAndKeeps(TargetRules.WEIGHT_PER_CHANNEL, Targets.QNN, TinyQdq.of("MatMul"), t -> { },
                t -> t.perChannel = false);
        assertFalse(ids(TinyQdq.conv().build(), Targets.QNN).contains(TargetRules.WEIGHT_PER_CHANNEL));
        assertFalse(ids(TinyQdq.of("Gemm").build(), Targets.QNN).contains(TargetRules.WEIGHT_PER_CHANNEL),
                "ORT's own QNN configuration writes per-channel Gemm weights");
        firesAndKeeps(TargetRules.WEIGHT_PER_CHANNEL, Targets.NNAPI, TinyQdq.of("Gemm"), t -> { },
                t -> t.perChannel = false);
    }

    @Test
    void weightRangeReadsTheTargetsQmax() {
        Target sevenBit = Targets.CPU.withWeightQmax(63);
        firesAndKeeps(TargetRules.WEIGHT_RANGE, sevenBit, t -> t.weightMax = 100, t -> t.weightMax = 63);
        assertFalse(ids(TinyQdq.conv().build(), Targets.CPU_VNNI).contains(TargetRules.WEIGHT_RANGE),
                "full-range s8 weights are cpu-vnni's form");
        firesAndKeeps(TargetRules.WEIGHT_RANGE, Targets.TENSORRT, TinyQdq.conv(), t -> {
            s8(t);
            t.bias = "float";
            t.weightMax = 128; // -128 is off TensorRT's [-127, 127]
        }, t -> {
            s8(t);
            t.bias = "float";
        });
    }

    @Test
    void biasForm() {
        firesAndKeeps(TargetRules.BIAS_FORM, Targets.CPU_VNNI, t -> t.bias = "float", t -> { });
        firesAndKeeps(TargetRules.BIAS_FORM, Targets.TENSORRT, RuleCheckerTest::s8, t -> {
            s8(t);
            t.bias = "float";
        });
    }

    @Test
    void biasScale() {
        firesAndKeeps(TargetRules.BIAS_SCALE, Targets.CPU_VNNI, t -> t.bias = "int32-wrong-scale", t -> { });
    }

    @Test
    void outputQuantized() {
        firesAndKeeps(TargetRules.OUTPUT_QUANTIZED, Targets.XNNPACK, t -> {
            s8(t);
            t.outputQ = false;
        }, RuleCheckerTest::s8);
    }

    @Test
    void residualAdd() {
        Model half = addOf(true, false);
        Model both = addOf(true, true);
        Model bias = addWithInitializer();
        assertTrue(ids(half, Targets.TENSORRT).contains(TargetRules.RESIDUAL_ADD));
        assertTrue(ids(half, Targets.OPENVINO).contains(TargetRules.RESIDUAL_ADD));
        assertFalse(ids(both, Targets.TENSORRT).contains(TargetRules.RESIDUAL_ADD));
        assertFalse(ids(bias, Targets.TENSORRT).contains(TargetRules.RESIDUAL_ADD));
        assertFalse(ids(half, Targets.CPU_VNNI).contains(TargetRules.RESIDUAL_ADD), "ORT CPU has no such rule");
        // Two branches neither of which is a weighted layer's output (embeddings, scores and a mask): no residual.
        assertFalse(ids(addOf(true, false, false), Targets.TENSORRT).contains(TargetRules.RESIDUAL_ADD));
        FIRED.add(TargetRules.RESIDUAL_ADD);
    }

    /** x = in·W (a weighted layer, or in itself); a = DQ(Q(x)); b = DQ(Q(x)) or Relu(x); y = a + b. */
    private static Model addOf(boolean aQuantized, boolean bQuantized) {
        return addOf(aQuantized, bQuantized, true);
    }

    private static Model addOf(boolean aQuantized, boolean bQuantized, boolean fromLayer) {
        ModelBuilder b = new ModelBuilder(13).input(tensor("in", FLOAT, 1, 8)).outputs("y")
                .init(Tensors.floatScalar("s", 0.1f)).init(TinyQdq.zeroPoint("z", DataType.INT8, new long[0], 0))
                .init(Tensors.floatTensor("w", new long[] {8, 8}, new float[64]));
        if (fromLayer) {
            b.node("MatMul", "layer", List.of("in", "w"), List.of("x"));
        } else {
            b.node("Sigmoid", "notalayer", List.of("in"), List.of("x"));
        }
        b.node("QuantizeLinear", "q", List.of("x", "s", "z"), List.of("xq"));
        b.node("DequantizeLinear", "dqa", List.of("xq", "s", "z"), List.of("a"));
        if (bQuantized) {
            b.node("DequantizeLinear", "dqb", List.of("xq", "s", "z"), List.of("bb"));
        } else {
            b.node("Relu", "relu", List.of("x"), List.of("bb"));
        }
        b.node("Add", "add", List.of(aQuantized ? "a" : "x", "bb"), List.of("y"));
        return b.build();
    }

    private static Model addWithInitializer() {
        ModelBuilder b = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 8)).outputs("y")
                .init(Tensors.floatScalar("s", 0.1f)).init(TinyQdq.zeroPoint("z", DataType.INT8, new long[0], 0))
                .init(Tensors.floatTensor("bias", new long[] {8}, new float[8]));
        b.node("QuantizeLinear", "q", List.of("x", "s", "z"), List.of("xq"));
        b.node("DequantizeLinear", "dqa", List.of("xq", "s", "z"), List.of("a"));
        b.node("Add", "add", List.of("a", "bias"), List.of("y"));
        return b.build();
    }

    @Test
    void microsoftDomain() {
        Model m = new ModelBuilder(13).input(tensor("x", FLOAT, 2, 4)).outputs("y")
                .node(NodeProto.newBuilder().setOpType("Gelu").setDomain("com.microsoft").setName("gelu")
                        .addInput("x").addOutput("y").build())
                .build();
        assertTrue(ids(m, Targets.TENSORRT).contains(TargetRules.MICROSOFT_DOMAIN));
        assertFalse(ids(m, Targets.CPU_VNNI).contains(TargetRules.MICROSOFT_DOMAIN));
        assertFalse(ids(TinyQdq.conv().build(), Targets.TENSORRT).contains(TargetRules.MICROSOFT_DOMAIN));
        FIRED.add(TargetRules.MICROSOFT_DOMAIN);
    }

    @Test
    void opset() {
        firesAndKeeps(TargetRules.OPSET, Targets.CPU_VNNI, t -> t.opset = 11, t -> { });
    }

    @Test
    void subgraph() {
        GraphProto branch = GraphProto.newBuilder().setName("b").addOutput(tensor("x", FLOAT, 1)).build();
        Model m = new ModelBuilder(13).input(tensor("c", dev.qwtonnx.onnx.TensorProto.DataType.BOOL_VALUE))
                .input(tensor("x", FLOAT, 1)).outputs("y")
                .node("If", "if", List.of("c"), List.of("y"), attr("then_branch", branch), attr("else_branch", branch))
                .build();
        assertTrue(ids(m, Targets.QNN).contains(TargetRules.SUBGRAPH));
        assertTrue(ids(m, Targets.NNAPI).contains(TargetRules.SUBGRAPH));
        assertFalse(ids(m, Targets.TENSORRT).contains(TargetRules.SUBGRAPH));
        assertFalse(ids(TinyQdq.conv().build(), Targets.QNN).contains(TargetRules.SUBGRAPH));
        FIRED.add(TargetRules.SUBGRAPH);
    }

    private static AttributeProto attr(String name, GraphProto g) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
    }

    @Test
    void dynamicShape() {
        firesAndKeeps(TargetRules.DYNAMIC_SHAPE, Targets.NNAPI, t -> t.dynamicInput = true, t -> { });
        firesAndKeeps(TargetRules.DYNAMIC_SHAPE, Targets.QNN, t -> t.dynamicInput = true, t -> { });
        assertFalse(ids(dyn(), Targets.CPU_VNNI).contains(TargetRules.DYNAMIC_SHAPE));
    }

    private static Model dyn() {
        TinyQdq t = TinyQdq.conv();
        t.dynamicInput = true;
        return t.build();
    }

    @Test
    void cpuS8ActivationsPairWithS8Weights() {
        firesAndKeeps(TargetRules.CPU_S8_ACTIVATION, Targets.CPU_VNNI, t -> {
            s8(t);
            t.weight = DataType.UINT8;
            t.perChannel = false;
        }, RuleCheckerTest::s8);
    }

    @Test
    void xnnpackTakesNoU8S8() {
        firesAndKeeps(TargetRules.XNNPACK_U8S8, Targets.XNNPACK, t -> { }, RuleCheckerTest::s8);
        TinyQdq u8u8 = TinyQdq.conv();
        u8u8.weight = DataType.UINT8;
        u8u8.perChannel = false;
        assertEquals(List.of(), RuleChecker.check(u8u8.build(), Targets.XNNPACK));
        assertTrue(RuleChecker.check(TinyQdq.conv().build(), Targets.XNNPACK).stream()
                .anyMatch(v -> v.rule().text().contains("u8 activations with s8 weights is not a pair XNNPACK takes")));
    }

    @Test
    void xnnpackPerChannel() {
        firesAndKeeps(TargetRules.XNNPACK_PER_CHANNEL, Targets.XNNPACK, t -> {
            s8(t);
            t.weightZeroPoint = 1;
        }, RuleCheckerTest::s8);
        TinyQdq deconv = TinyQdq.of("ConvTranspose");
        s8(deconv);
        deconv.axis = 1;
        assertTrue(ids(deconv.build(), Targets.XNNPACK).contains(TargetRules.XNNPACK_PER_CHANNEL));
    }

    @Test
    void xnnpackQuantizedMatMulStaysOnCpu() {
        TinyQdq mm = TinyQdq.of("MatMul");
        s8(mm);
        firesAndKeeps(TargetRules.XNNPACK_QDQ_MATMUL, Targets.XNNPACK, mm, t -> { }, t -> t.actQuantized = false);
    }

    @Test
    void nnapiWeightZeroPoint() {
        firesAndKeeps(TargetRules.NNAPI_WEIGHT_ZERO_POINT, Targets.NNAPI, t -> t.weightZeroPoint = 2, t -> { });
    }

    @Test
    void tensorrtWeightsAreSymmetricS8() {
        Consumer<TinyQdq> trt = t -> {
            s8(t);
            t.bias = "float";
        };
        firesAndKeeps(TargetRules.TENSORRT_WEIGHT_SYMMETRIC, Targets.TENSORRT, trt.andThen(t -> {
            t.weight = DataType.UINT8;
            t.perChannel = false;
        }), trt);
    }

    @Test
    void qnnPerChannelAxis() {
        firesAndKeeps(TargetRules.QNN_PER_CHANNEL_AXIS, Targets.QNN, t -> t.axis = 1, t -> { });
    }

    @Test
    void everyRuleOfEveryTargetHasAnIdTextAndSource() {
        for (Target t : Targets.ALL) {
            Set<String> seen = new HashSet<>();
            for (Rule r : RuleChecker.rules(t)) {
                assertTrue(seen.add(r.id()), t.name() + " lists " + r.id() + " twice");
                assertFalse(r.text().isBlank() || r.source().isBlank(), t.name() + " " + r.id());
            }
        }
    }

    @AfterAll
    static void everyRuleHasATestThatMakesItFire() {
        Set<String> all = new TreeSet<>();
        for (Target t : Targets.ALL) {
            RuleChecker.rules(t).forEach(r -> all.add(r.id()));
            RuleChecker.rules(t.withActivationBits(16)).forEach(r -> all.add(r.id()));
        }
        // Only meaningful when the whole class ran.
        if (FIRED.size() > 10) {
            all.removeAll(FIRED);
            assertEquals(Set.of(), all, "rules no test makes fire");
        }
    }
}
