package dev.qwtonnx.target;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.prepare.FixInputShapes;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.Diagnostics;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.RunContext;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The targets that quantize every op's output and take static shapes only (QNN HTP, NNAPI), on a
 * small transformer-like block (MatMul + bias Add, Relu, MatMul + bias Add, residual Add, MatMul)
 * with a dynamic sequence length: with samples of one length the output breaks none of the
 * target's rules, and compensation adds no node; with samples of several lengths the sequence
 * stays dynamic, and the run says which input and dimension.
 */
class StaticShapeTargetsTest {
    private static final long[] SIX = {1, 6, 32};
    private static final long[] NINE = {1, 9, 32};

    private static QuantizeRun.Result quantize(Model f, Target t, CwacOptions.Method method, Diagnostics d,
            long[]... shapes) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(QuantOptions.defaults().withTarget(t))
                .withCwac(CwacOptions.defaults().withMethod(method)).withVerifyBetweenPasses(true);
        try (CalibrationSource calib = TestModels.gaussian("x", 7, 12, shapes)) {
            return QuantizeRun.quantize(f, o, new RunContext(calib, null, Progress.NONE, null, d));
        }
    }

    private static boolean dynamic(Model m) {
        return m.graph().getInput(0).getType().getTensorType().getShape().getDimList().stream()
                .anyMatch(TensorShapeProto.Dimension::hasDimParam);
    }

    @ParameterizedTest
    @ValueSource(strings = {"qnn", "nnapi"})
    void samplesOfOneLengthGiveAModelThatBreaksNoRuleAndCompensationAddsNoNode(String name) {
        Target t = Target.named(name);
        Model f = TestModels.mlp(5);
        Model q = quantize(f, t, CwacOptions.Method.CWAC, new Diagnostics(), SIX).model();
        Model plain = quantize(f, t, CwacOptions.Method.NONE, new Diagnostics(), SIX).model();

        assertEquals(List.of(), RuleChecker.check(q, t));
        assertEquals(plain.graph().getNodeCount(), q.graph().getNodeCount(), "compensation adds no node");
        assertTrue(!dynamic(q), "the sequence length is fixed to the samples'");
        // Each quantized MatMul's own output goes through a Q, ahead of its bias Add.
        GraphEditor g = new GraphEditor(q.graph());
        int matMuls = 0;
        for (NodeProto n : g.nodes()) {
            NodeProto w = n.getOpType().equals("MatMul") ? g.producer(n.getInput(1)) : null;
            if (w != null && w.getOpType().equals("DequantizeLinear")) {
                matMuls++;
                assertTrue(g.consumers(n.getOutput(0)).stream().allMatch(c -> c.getOpType().equals("QuantizeLinear")),
                        n.getName());
            }
        }
        assertEquals(3, matMuls);
        try (CalibrationSource calib = TestModels.gaussian("x", 8, 6, SIX)) {
            for (Fidelity.OutputFidelity o : Fidelity.measure(f, q, calib, Progress.NONE)) {
                assertTrue(o.meanCosine() > 0.99, name + ": " + o);
            }
        }
    }

    @Test
    void samplesOfSeveralLengthsLeaveTheSequenceDynamicAndTheRunNamesIt() {
        Target t = Target.named("qnn");
        Diagnostics d = new Diagnostics();
        Model q = quantize(TestModels.mlp(5), t, CwacOptions.Method.CWAC, d, SIX, NINE).model();

        List<Violation> vs = RuleChecker.check(q, t);
        assertEquals(List.of(TargetRules.DYNAMIC_SHAPE), RuleChecker.ruleIds(vs), vs.toString());
        List<Diagnostics.Reason> why = d.reasons().stream().filter(r -> r.stage().equals(FixInputShapes.NAME)).toList();
        assertEquals(1, why.size(), d.reasons().toString());
        assertTrue(why.get(0).subject().contains("x[1]") && why.get(0).why().contains("6 to 9"),
                why.get(0).toString());
    }

    /**
     * A branch never taken (an If on a constant) that only type-checks while the sequence is dynamic, as Silero VAD's
     * LSTM branches do: with the samples' length fixed, ONNX Runtime rejects the graph, so the inputs stay dynamic,
     * the run says why, and the quantized model is written, not refused.
     */
    @Test
    void sizesOrtRejectsLeaveTheInputsDynamicAndTheRunGoesOn() {
        Model f = withBranchOnlyDynamicShapesTypeCheck(TestModels.mlp(5));
        assertEquals(null, dev.qwtonnx.ort.OrtSessions.refusal(f));
        Diagnostics d = new Diagnostics();
        Model q = quantize(f, Target.named("qnn"), CwacOptions.Method.CWAC, d, SIX).model();
        assertTrue(dynamic(q), "the sequence length stays dynamic");
        List<Diagnostics.Reason> why = d.reasons().stream().filter(r -> r.stage().equals(FixInputShapes.NAME)).toList();
        assertEquals(1, why.size(), d.reasons().toString());
        assertTrue(why.get(0).why().startsWith("with the samples' sizes ONNX Runtime rejects the model ("),
                why.get(0).toString());
        // The target's rules name the dynamic shape (and the If, which QNN does not take either).
        assertTrue(RuleChecker.ruleIds(RuleChecker.check(q, Target.named("qnn"))).contains(TargetRules.DYNAMIC_SHAPE));
    }

    /** {@code m} with a second output: If(true) of x, whose else branch adds a [1, 7, 32] constant to x. */
    private static Model withBranchOnlyDynamicShapesTypeCheck(Model m) {
        dev.qwtonnx.onnx.TypeProto floatType = dev.qwtonnx.onnx.TypeProto.newBuilder().setTensorType(
                dev.qwtonnx.onnx.TypeProto.Tensor.newBuilder().setElemType(dev.qwtonnx.onnx.TensorProto.DataType.FLOAT_VALUE))
                .build();
        dev.qwtonnx.onnx.GraphProto then = dev.qwtonnx.onnx.GraphProto.newBuilder().setName("then")
                .addNode(NodeProto.newBuilder().setOpType("Identity").setName("then_identity").addInput("x").addOutput("zt"))
                .addOutput(dev.qwtonnx.onnx.ValueInfoProto.newBuilder().setName("zt").setType(floatType)).build();
        dev.qwtonnx.onnx.GraphProto otherwise = dev.qwtonnx.onnx.GraphProto.newBuilder().setName("else")
                .addNode(NodeProto.newBuilder().setOpType("Add").setName("else_add").addInput("x").addInput("seven")
                        .addOutput("ze"))
                .addOutput(dev.qwtonnx.onnx.ValueInfoProto.newBuilder().setName("ze").setType(floatType)).build();
        NodeProto ifNode = NodeProto.newBuilder().setOpType("If").setName("branch").addInput("always").addOutput("z")
                .addAttribute(dev.qwtonnx.onnx.AttributeProto.newBuilder().setName("then_branch")
                        .setType(dev.qwtonnx.onnx.AttributeProto.AttributeType.GRAPH).setG(then))
                .addAttribute(dev.qwtonnx.onnx.AttributeProto.newBuilder().setName("else_branch")
                        .setType(dev.qwtonnx.onnx.AttributeProto.AttributeType.GRAPH).setG(otherwise))
                .build();
        dev.qwtonnx.onnx.GraphProto g = m.graph().toBuilder()
                .addInitializer(dev.qwtonnx.onnx.TensorProto.newBuilder().setName("always")
                        .setDataType(dev.qwtonnx.onnx.TensorProto.DataType.BOOL_VALUE).addInt32Data(1))
                .addInitializer(dev.qwtonnx.model.Tensors.floatTensor("seven", new long[] {1, 7, 32}, new float[7 * 32]))
                .addNode(ifNode)
                .addOutput(dev.qwtonnx.onnx.ValueInfoProto.newBuilder().setName("z").setType(floatType)).build();
        return m.withGraph(g);
    }

    @Test
    void aTargetThatTakesDynamicShapesKeepsThem() {
        Model q = quantize(TestModels.mlp(5), Target.cpu(), CwacOptions.Method.CWAC, new Diagnostics(), SIX).model();
        assertTrue(dynamic(q));
    }
}
