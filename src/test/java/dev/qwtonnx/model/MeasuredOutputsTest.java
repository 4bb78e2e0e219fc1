package dev.qwtonnx.model;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.model.Nodes.intAttribute;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** What output fidelity measures: float outputs, or where a model has none, the float tensors its outputs come from. */
class MeasuredOutputsTest {
    private static final int BOOL = dev.qwtonnx.onnx.TensorProto.DataType.BOOL_VALUE;

    /** x -> MatMul -> Softmax 'probs' -> ArgMax 'ids' (int64); ReduceMax 'conf' -> Greater 'ok' (bool); Cast 'n'. */
    private static ModelBuilder classifier() {
        ModelBuilder b = new ModelBuilder(1, 13).input(tensor("x", FLOAT, 1, 8));
        b.node("MatMul", "fc", List.of("x", b.randomInit("w", 0.5, 8, 4)), List.of("logits"));
        b.node("Softmax", "softmax", List.of("logits"), List.of("probs"), intAttribute("axis", -1));
        b.node("ArgMax", "argmax", List.of("probs"), List.of("ids"), intAttribute("axis", -1));
        b.node("ReduceMax", "max", List.of("probs"), List.of("conf"), intAttribute("keepdims", 0));
        b.node("Greater", "confident", List.of("conf", b.init("half", new long[] {}, new float[] {0.5f})), List.of("ok"));
        b.node("Cast", "count", List.of("logits"), List.of("n"), intAttribute("to", INT64));
        return b;
    }

    @Test
    void aModelWithoutFloatOutputsIsMeasuredOnTheFloatTensorsItsOutputsComeFrom() {
        Model m = classifier().output("ids", INT64, 1).output("ok", BOOL, 1).output("n", INT64, 1, 4).build();
        assertEquals(List.of("probs", "conf", "logits"), MeasuredOutputs.of(m));
        assertEquals(List.of("probs", "conf", "logits"), MeasuredOutputs.beyondGraphOutputs(m));
        assertTrue(MeasuredOutputs.note(m).contains("'probs', 'conf', 'logits'"), MeasuredOutputs.note(m));
        // The tensors named are float, as a session exposing them returns them.
        Map<String, HostTensor> got = OrtTestSupport.run(dev.qwtonnx.calib.OrtRunner.exposeOutputs(m,
                MeasuredOutputs.beyondGraphOutputs(m)), Map.of("x", OrtTestSupport.randomFloats(new Random(2), 1, 8)));
        for (String n : MeasuredOutputs.of(m)) {
            assertEquals(FLOAT, got.get(n).type().code, n);
        }
    }

    @Test
    void floatOutputsAreMeasuredAsTheyAre() {
        Model m = classifier().output("ids", INT64, 1).output("probs", FLOAT, 1, 4).build();
        assertEquals(List.of("probs"), MeasuredOutputs.of(m));
        assertEquals(List.of(), MeasuredOutputs.beyondGraphOutputs(m));
        assertEquals("", MeasuredOutputs.note(m));
    }
}
