package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.testutil.AudioFrontEnd;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The layers left float because their outputs reach a log through magnitude operations, and those that are not. */
class LogInputsTest {
    private static Map<String, String> logFed(Model m) {
        return LogInputs.layers(new GraphEditor(m.graph()));
    }

    private static Set<String> layerNames(Model m) {
        java.util.Set<String> names = new java.util.TreeSet<>();
        m.graph().getNodeList().stream().filter(n -> LayerKind.of(n.getOpType()) != null).forEach(n -> names.add(n.getName()));
        return names;
    }

    /** An audio front-end's STFT Convs (under power) and mel MatMul all feed its log: the plan keeps them float. */
    @Test
    void anAudioFrontEndsTransformAndFilterbankStayFloatUnlessAsked() {
        Model m = AudioFrontEnd.model();
        Map<String, String> fed = logFed(m);
        assertEquals(layerNames(m), fed.keySet());
        assertEquals(3, fed.size(), fed.toString());
        LayerMatcher.Result plan = LayerMatcher.match(m, QuantOptions.defaults());
        assertEquals(List.of(), plan.layers());
        assertEquals(3, plan.rejections().size());
        for (LayerMatcher.Rejected r : plan.rejections()) {
            assertTrue(r.reason() == LayerMatcher.Reason.LOG_INPUT && r.why().contains("--quantize-log-inputs"), r.toString());
        }
        assertEquals(3, LayerMatcher.match(m, QuantOptions.defaults().withQuantizeLogInputs(true)).layers().size());
    }

    /** A log-softmax written out (Softmax, or Exp and ReduceSum, before the Log) keeps the classifier quantized. */
    @Test
    void aLogSoftmaxWrittenOutReachesNoLayer() {
        ModelBuilder b = new ModelBuilder(13).input("x", OrtTestSupport.FLOAT, 1, 8).output("a", OrtTestSupport.FLOAT, 1, 4)
                .output("b", OrtTestSupport.FLOAT, 1, 1);
        String logits = b.node("MatMul", List.of("x", b.randomInit("w", 0.5, 8, 4)), "logits");
        b.node("Log", List.of(b.node("Softmax", List.of(logits), "p")), "a");
        String sum = b.node("ReduceSum", List.of(b.node("Exp", List.of(logits), "e")), "s",
                Nodes.intsAttribute("axes", 1));
        b.node("Log", List.of(sum), "b");
        Model m = b.build();
        assertEquals(Map.of(), logFed(m));
        assertEquals(1, LayerMatcher.match(m, QuantOptions.defaults()).layers().size());
    }

    /** Under a log after a stack of Convs and Relus, only the last two Convs on the path stay float. */
    @Test
    void aLogAfterADeepStackKeepsTwoLayersFloat() {
        ModelBuilder b = new ModelBuilder(13).input("x", OrtTestSupport.FLOAT, 1, 2, 8, 8)
                .output("y", OrtTestSupport.FLOAT, 1, 2, 8, 8);
        String t = "x";
        for (int i = 0; i < 4; i++) {
            String c = b.node("Conv", List.of(t, b.randomInit("w" + i, 0.5, 2, 2, 1, 1)), "c" + i);
            t = b.node("Relu", List.of(c), "r" + i);
        }
        b.node("Log", List.of(b.node("Add", List.of(t, b.init("eps", new long[] {}, new float[] {1e-3f})), "t")), "y");
        Model m = b.build();
        Map<String, String> fed = logFed(m);
        assertEquals(2, fed.size(), fed.toString());
        assertEquals(2, LayerMatcher.match(m, QuantOptions.defaults()).layers().size());
    }
}
