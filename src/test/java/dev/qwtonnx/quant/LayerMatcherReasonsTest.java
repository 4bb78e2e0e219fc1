package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Each candidate left in float carries the kind of its reason, which the run acts on (an all-float16 model is an
 * error of its own, an all-slower plan is the cost model's verdict), whatever its text says.
 */
class LayerMatcherReasonsTest {
    private static TensorProto typed(String name, int type, int bytesPerValue, long... dims) {
        int n = 1;
        for (long d : dims) {
            n *= (int) d;
        }
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(type)
                .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[n * bytesPerValue]));
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }

    /** Five MatMuls: one quantized, four left float for four kinds of reason. */
    private static Model model() {
        ModelBuilder b = new ModelBuilder(13).input("x", OrtTestSupport.FLOAT, 1, 8).input("y", OrtTestSupport.FLOAT, 8, 8)
                .outputs("a", "b", "c", "d", "e");
        b.node("MatMul", "quantized", List.of("x", b.randomInit("w1", 0.5, 8, 8)), List.of("a"));
        b.node("MatMul", "asked", List.of("x", b.randomInit("w2", 0.5, 8, 8)), List.of("b"));
        b.node("MatMul", "activations", List.of("x", "y"), List.of("c"));
        b.init(typed("w16", TensorProto.DataType.FLOAT16_VALUE, 2, 8, 8));
        b.node("MatMul", "half", List.of("x", "w16"), List.of("d"));
        b.init(typed("w64", TensorProto.DataType.DOUBLE_VALUE, 8, 8, 8));
        b.node("MatMul", "double", List.of("x", "w64"), List.of("e"));
        return b.build();
    }

    private static Map<String, LayerMatcher.Reason> reasons(LayerMatcher.Result plan) {
        Map<String, LayerMatcher.Reason> r = new LinkedHashMap<>();
        plan.rejections().forEach(x -> r.put(x.node(), x.reason()));
        return r;
    }

    @Test
    void everyRejectionNamesItsKind() {
        LayerMatcher.Result plan = LayerMatcher.match(model(), QuantOptions.defaults().withKeepFloat(Set.of("asked")));
        assertEquals(List.of("quantized"), plan.layers().stream().map(LayerPlan::name).toList());
        assertEquals(Map.of("MatMul node 'asked'", LayerMatcher.Reason.ASKED,
                "MatMul node 'activations'", LayerMatcher.Reason.FORM,
                "MatMul node 'half'", LayerMatcher.Reason.FLOAT16,
                "MatMul node 'double'", LayerMatcher.Reason.NOT_FLOAT32), reasons(plan));
    }

    /** A layer kept float after matching (the cost model's choice, say) carries the kind it is given, its text as is. */
    @Test
    void keepingFloatRecordsTheGivenKind() {
        LayerMatcher.Result plan = LayerMatcher.match(model(), QuantOptions.defaults())
                .keepingFloat(Map.of("quantized", new LayerMatcher.Kept(LayerMatcher.Reason.SLOWER, "slower here")));
        assertEquals(LayerMatcher.Reason.SLOWER, reasons(plan).get("MatMul node 'quantized'"));
        assertEquals("MatMul node 'quantized': slower here", plan.rejected().get(plan.rejected().size() - 1));
        assertEquals(List.of("asked"), plan.layers().stream().map(LayerPlan::name).toList());
    }

    /** A MatMul whose constant is its first input (W·x) is left float, and the summary says which form is quantized. */
    @Test
    void aConstantFirstInputIsNamedAsSuch() {
        ModelBuilder b = new ModelBuilder(13).input("x", OrtTestSupport.FLOAT, 8, 4).outputs("a", "b");
        b.node("MatMul", "weightFirst", List.of(b.randomInit("w", 0.5, 8, 8), "x"), List.of("a"));
        b.node("MatMul", "constants", List.of("w", b.randomInit("v", 0.5, 8, 4)), List.of("b"));
        LayerMatcher.Result plan = LayerMatcher.match(b.build(), QuantOptions.defaults());
        assertEquals(List.of("MatMul node 'weightFirst': its constant is the first input (W·x; layers of the form x·W "
                + "are quantized)", "MatMul node 'constants': both inputs are constants"),
                plan.rejections().stream().map(LayerMatcher.Rejected::toString).toList());
        assertEquals(Map.of("MatMul node 'weightFirst'", LayerMatcher.Reason.FORM,
                "MatMul node 'constants'", LayerMatcher.Reason.FORM), reasons(plan));
    }
}
