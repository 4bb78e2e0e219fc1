package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.quant.LayerMatcher.Reason;
import dev.qwtonnx.quant.LayerMatcher.Rejected;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The summary's "left in float" lines: one per operator and reason, a lone reason on its node's own line. */
class LeftInFloatLinesTest {
    @Test
    void layersLeftForOneReasonShareALine() {
        List<Rejected> r = List.of(
                new Rejected("MatMul node 'l0/qk'", Reason.FORM, "its weight is not a constant"),
                new Rejected("Conv node 'c1'", Reason.SLOWER, "int8 slower than float: est. 3.0 vs 0.5 us"),
                new Rejected("MatMul node 'l0/av'", Reason.FORM, "its weight is not a constant"),
                new Rejected("MatMul node 'l1/qk'", Reason.FORM, "its weight is not a constant"),
                new Rejected("Gemm node 'g'", Reason.FORM, "its weight is not a constant"),
                new Rejected("Conv node 'c2'", Reason.SLOWER, "int8 slower than float: est. 3.0 vs 2.4 us"),
                new Rejected("Gemm node 'h'", Reason.FORM, "its weight is not a constant"));
        assertEquals(List.of(
                "3 MatMul nodes ('l0/qk', 'l0/av' and 1 more), each: its weight is not a constant",
                "Conv node 'c1': int8 slower than float: est. 3.0 vs 0.5 us",
                "2 Gemm nodes ('g', 'h'), each: its weight is not a constant",
                "Conv node 'c2': int8 slower than float: est. 3.0 vs 2.4 us"), QuantizeCommand.grouped(r));
    }
}
