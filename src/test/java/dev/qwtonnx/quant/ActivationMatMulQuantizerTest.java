package dev.qwtonnx.quant;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.verify.Fidelity;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A small attention block: scores = Q·Kᵀ with a static inner dimension of 256, softmax, then
 * scores·V (inner dimension the sequence, not known statically) and an output projection. The
 * first becomes an integer kernel in ORT's optimized graph; the second stays float, with the reason.
 */
class ActivationMatMulQuantizerTest {
    private static final long HEADS = 2;
    private static final long SEQ = 16;
    private static final long DIM = ActivationMatMulQuantizer.MIN_INNER;

    private static Model attention() {
        ModelBuilder b = new ModelBuilder(5, 13);
        b.input("q", FLOAT, 1, HEADS, SEQ, DIM).input("kt", FLOAT, 1, HEADS, DIM, SEQ).input("v", FLOAT, 1, HEADS, SEQ, 8);
        String scores = b.node("MatMul", List.of("q", "kt"), "scores");
        String p = b.node("Softmax", List.of(scores), "probs", Nodes.intAttribute("axis", -1));
        String ctx = b.node("MatMul", List.of(p, "v"), "context");
        b.randomInit("wo", 0.3, 8, 8);
        b.node("MatMul", List.of(ctx, "wo"), "y");
        b.output("y", FLOAT, 1, HEADS, SEQ, 8);
        return b.build();
    }

    private static Map<String, HostTensor> inputs(Random r) {
        return Map.of("q", OrtTestSupport.randomFloats(r, 1, HEADS, SEQ, DIM),
                "kt", OrtTestSupport.randomFloats(r, 1, HEADS, DIM, SEQ),
                "v", OrtTestSupport.randomFloats(r, 1, HEADS, SEQ, 8));
    }

    @Test
    void thePlanTakesTheMatMulWithALargeStaticInnerDimensionOnly() {
        ActivationMatMulQuantizer.Plan plan = ActivationMatMulQuantizer.plan(attention());
        assertEquals(1, plan.nodes().size(), plan.toString());
        assertEquals(java.util.Set.of("q", "kt"), plan.tensors());
        assertEquals(1, plan.rejections().size());
        assertTrue(plan.rejections().get(0).reason().contains("not known statically"), plan.rejections().toString());
    }

    @Test
    void qTimesKTransposedRunsAsAnIntegerKernelInOrt() {
        Model in = attention();
        Random rnd = new Random(3);
        List<Sample> calib = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            calib.add(new Sample("s" + i, inputs(rnd)));
        }
        QuantizeRun.Result r = QwtOnnx.quantize(in, CalibrationSources.ofList(calib),
                Int8Anyway.options().withVerifyBetweenPasses(true), Progress.NONE, null);
        int added = 0;
        for (NodeProto n : r.model().graph().getNodeList()) {
            if (ActivationMatMulQuantizer.NAME.equals(Nodes.metadata(n, Nodes.CREATED_BY))) {
                added++;
            }
        }
        assertEquals(4, added, "a Q/DQ pair on each of q and kᵀ");
        // Compensation has no constant weight to fold into there, and says so.
        assertTrue(r.compensation().skipped().stream().anyMatch(s -> s.contains("'matmul_0'")),
                r.compensation().skipped().toString());
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        // The weight MatMul and Q·Kᵀ run integer; scores·V stays a float MatMul.
        assertEquals(2, OrtKernels.count(ops, OrtKernels.INTEGER_OPS), ops.toString());
        assertEquals(1, OrtKernels.count(ops, OrtKernels.FLOAT_LAYER_OPS), ops.toString());
        for (int i = 0; i < 4; i++) {
            Map<String, HostTensor> x = inputs(rnd);
            double c = Fidelity.cosine(OrtTestSupport.run(in, x).get("y").toFloats(),
                    OrtTestSupport.run(r.model(), x).get("y").toFloats());
            assertTrue(c > 0.99, "cosine " + c);
        }
    }
}
