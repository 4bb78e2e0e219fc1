package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.quant.FullRankMatMulBias;
import dev.qwtonnx.quant.Int32MatMulBias;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A pass's rejections reach the run's diagnostics (the report's decisions) and --verbose's log. */
class PassReasonsTest {
    @Test
    void biasFormReasonsReachTheDiagnosticsAndTheLog() {
        // x[1, S, 32] with S dynamic: the int32 form does not apply (rank 3), nor the full-rank one (no static shape).
        Diagnostics diagnostics = new Diagnostics();
        List<String> log = new ArrayList<>();
        QuantizeRun.quantize(TestModels.mlp(9), Int8Anyway.options(), new RunContext(
                TestModels.gaussian("x", 1, 8, new long[] {1, 5, 32}), null, Progress.NONE, log::add, diagnostics));
        List<Diagnostics.Reason> reasons = diagnostics.reasons();
        assertTrue(reasons.contains(new Diagnostics.Reason(Int32MatMulBias.NAME, "MatMul node 'matmul_0'",
                "its input has rank 3, and ORT makes a Gemm only of a MatMul with a 2-D input")), reasons.toString());
        assertTrue(reasons.stream().anyMatch(r -> r.stage().equals(FullRankMatMulBias.NAME)
                && r.why().startsWith("no graph input has a fully static shape")), reasons.toString());
        assertTrue(log.contains(Int32MatMulBias.NAME + ": left MatMul node 'matmul_0': its input has rank 3, and ORT"
                + " makes a Gemm only of a MatMul with a 2-D input"), log.toString());
    }
}
