package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** A model declaring an IR version newer than ORT reads (what Python's onnx 1.23 writes) runs at ORT's newest. */
class IrVersionForOrtTest {
    private static Model declaring(long ir) {
        Model m = new ModelBuilder(17).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                .node("Relu", "a", List.of("x"), List.of("t"))
                .node("Neg", "b", List.of("t"), List.of("y"))
                .build();
        return m.withProto(m.proto().toBuilder().setIrVersion(ir).build());
    }

    @Test
    void ortRefusesTheNewerVersionAndRunsTheModelDeclaredAtItsNewest() {
        Model newer = declaring(IrVersionForOrt.ORT_MAX_IR_VERSION + 1);
        Map<String, dev.qwtonnx.model.HostTensor> x = Map.of("x", randomFloats(new Random(5), 2, 3));
        // The fact the pass exists for: should ORT read a newer version one day, the constant moves with it.
        Throwable refused = assertThrows(Throwable.class, () -> OrtTestSupport.run(newer, x));
        assertTrue(String.valueOf(refused.getMessage()).contains("IR version"), refused.getMessage());
        Model read = IrVersionForOrt.apply(newer);
        assertEquals(IrVersionForOrt.ORT_MAX_IR_VERSION, read.proto().getIrVersion());
        assertSameOutputs(declaring(8), read, x, 0);
        assertTrue(IrVersionForOrt.note(newer.proto().getIrVersion()).contains("IR version " + (IrVersionForOrt.ORT_MAX_IR_VERSION + 1)));
    }

    @Test
    void aVersionOrtReadsIsLeftAsItIs() {
        for (long ir : new long[] {4, 8, IrVersionForOrt.ORT_MAX_IR_VERSION}) {
            Model m = declaring(ir);
            assertSame(m, IrVersionForOrt.apply(m));
            assertEquals("", IrVersionForOrt.note(ir));
        }
    }
}
