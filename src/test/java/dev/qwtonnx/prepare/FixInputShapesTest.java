package dev.qwtonnx.prepare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Input dimensions fixed to the samples' sizes where they agree, left dynamic (and said why) where not. */
class FixInputShapesTest {
    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    /** x[d0, d1, 32] → MatMul(32→16) → y[d0, d1, 16]: batch and sequence both named, shared with the output. */
    private static Model dynamicBatchAndSequence() {
        ModelBuilder b = new ModelBuilder(3, 13).input("x", F, -1, -1, 32).output("y", F, -1, -1, 16);
        b.node("MatMul", List.of("x", b.randomInit("w", 0.2, 32, 16)), "y");
        return b.build();
    }

    private static String dims(ValueInfoProto v) {
        StringBuilder sb = new StringBuilder();
        for (TensorShapeProto.Dimension d : v.getType().getTensorType().getShape().getDimList()) {
            sb.append(sb.length() == 0 ? "" : ",").append(d.hasDimValue() ? Long.toString(d.getDimValue()) : d.getDimParam());
        }
        return sb.toString();
    }

    private static String metadata(Model m) {
        return m.proto().getMetadataPropsList().stream().filter(p -> p.getKey().equals(FixInputShapes.METADATA_KEY))
                .map(p -> p.getValue()).findFirst().orElse(null);
    }

    @Test
    void fixesEachDimensionTheSamplesAgreeOnAndTheOutputDimensionsOfTheSameName() {
        Model m = dynamicBatchAndSequence();
        PassResult r = new FixInputShapes(Map.of("x", List.of(new long[] {1, 5, 32}, new long[] {1, 5, 32})))
                .run(m);
        assertTrue(r.changed());
        assertEquals(List.of(), r.rejections());
        assertEquals("1,5,32", dims(r.model().graph().getInput(0)));
        assertEquals("1,5,16", dims(r.model().graph().getOutput(0)));
        assertTrue(metadata(r.model()).contains("x=[1,5,32]"), metadata(r.model()));
        // The fixed model computes what the dynamic one does at that size.
        Map<String, HostTensor> in = Map.of("x", OrtTestSupport.randomFloats(new Random(1), 1, 5, 32));
        OrtTestSupport.assertSameOutputs(m, r.model(), in, 0);
    }

    @Test
    void leavesADimensionTheSamplesDisagreeOnDynamicAndNamesIt() {
        Model m = dynamicBatchAndSequence();
        PassResult r = new FixInputShapes(Map.of("x", List.of(new long[] {1, 5, 32}, new long[] {1, 9, 32}))).run(m);
        assertTrue(r.changed(), "the batch dimension, on which they agree, is fixed");
        assertEquals("1,d1,32", dims(r.model().graph().getInput(0)));
        assertEquals("1,d1,16", dims(r.model().graph().getOutput(0)));
        assertEquals(1, r.rejections().size(), r.rejections().toString());
        String why = r.rejections().get(0).toString();
        assertTrue(why.contains("input dimension x[1] (d1)") && why.contains("5 to 9") && why.contains("pad"), why);
    }

    @Test
    void inputsSharingADimensionNameTheSamplesDisagreeOnGiveOneLine() {
        ModelBuilder b = new ModelBuilder(4, 13).input("a", F, 1, -1, 8).input("c", F, 1, -1, 8).output("y", F, 1, -1, 8);
        // Both inputs' dimension 1 is named d1 by the builder, as an exporter names a shared sequence length.
        b.node("Add", List.of("a", "c"), "y");
        Map<String, List<long[]>> seen = Map.of("a", List.of(new long[] {1, 3, 8}, new long[] {1, 11, 8}),
                "c", List.of(new long[] {1, 3, 8}, new long[] {1, 11, 8}));
        PassResult r = new FixInputShapes(seen).run(b.build());
        assertEquals(1, r.rejections().size(), r.rejections().toString());
        String why = r.rejections().get(0).toString();
        assertTrue(why.contains("a[1], c[1] (d1)") && why.contains("3 to 11"), why);
    }

    @Test
    void leavesTheModelAsItIsWhenNothingAgrees() {
        Model m = TestModels.mlp(1); // x[1, d1, 32]: only the sequence is dynamic
        PassResult r = new FixInputShapes(Map.of("x", List.of(new long[] {1, 4, 32}, new long[] {1, 6, 32}))).run(m);
        assertFalse(r.changed());
        assertSame(m, r.model());
        assertEquals(1, r.rejections().size());
        assertEquals(null, metadata(r.model()));

        PassResult none = new FixInputShapes(Map.of()).run(m);
        assertFalse(none.changed());
        assertTrue(none.rejections().get(0).reason().contains("no sample gives this input"), none.rejections().toString());
    }
}
