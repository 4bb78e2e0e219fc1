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

    @Test
    void aTargetThatTakesDynamicShapesKeepsThem() {
        Model q = quantize(TestModels.mlp(5), Target.cpu(), CwacOptions.Method.CWAC, new Diagnostics(), SIX).model();
        assertTrue(dynamic(q));
    }
}
