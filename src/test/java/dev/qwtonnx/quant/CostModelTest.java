package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.target.Target;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The cost model's choices on ORT CPU targets: what stays float because int8 would be slower, and what does not. */
class CostModelTest {
    /** The defaults with the cost model on (--no-keep-slow-int8). */
    /** The default: layers estimated slower in int8 stay float. */
    private static final QuantOptions JUDGED = QuantOptions.defaults();
    private static final int FLOAT = dev.qwtonnx.onnx.TensorProto.DataType.FLOAT_VALUE;

    /** Sigmoid → Conv (named {@code name}) → Sigmoid: a layer with float operators on both sides. */
    private static String between(ModelBuilder b, String in, String name, long cout, long cin, long k, long group) {
        String s = b.node("Sigmoid", List.of(in), name + "_in");
        String w = b.randomInit(name + "_w", 0.1, cout, cin / group, k, k);
        b.node("Conv", name, List.of(s, w), List.of(name + "_out"), Nodes.intAttribute("group", group),
                Nodes.intsAttribute("pads", k / 2, k / 2, k / 2, k / 2));
        return b.node("Sigmoid", List.of(name + "_out"), name + "_act");
    }

    static Model depthwiseAlone() {
        ModelBuilder b = new ModelBuilder(5, 13).input("x", FLOAT, 1, 16, 12, 12).output("y", FLOAT, 1, 16, 12, 12);
        String out = between(b, "x", "dw_small", 16, 16, 3, 16);
        b.node("Identity", List.of(out), "y");
        return b.build();
    }

    static Model largeConvs() {
        ModelBuilder b = new ModelBuilder(6, 13).input("x", FLOAT, 1, 128, 28, 28).output("y", FLOAT, 1, 64, 28, 28);
        String pw = between(b, "x", "pw_large", 128, 128, 1, 1);
        String reg = between(b, pw, "conv3x3", 64, 128, 3, 1);
        b.node("Identity", List.of(reg), "y");
        return b.build();
    }

    /** Sigmoid → pointwise 64→64 → depthwise 3×3 → pointwise 64→64 → Sigmoid on 28×28: one int8 chain. */
    static Model chain() {
        ModelBuilder b = new ModelBuilder(7, 13).input("x", FLOAT, 1, 64, 28, 28).output("y", FLOAT, 1, 64, 28, 28);
        String s = b.node("Sigmoid", List.of("x"), "s");
        b.node("Conv", "pw1", List.of(s, b.randomInit("w1", 0.1, 64, 64, 1, 1)), List.of("p1"));
        b.node("Conv", "dw", List.of("p1", b.randomInit("wd", 0.1, 64, 1, 3, 3)), List.of("d"),
                Nodes.intAttribute("group", 64), Nodes.intsAttribute("pads", 1, 1, 1, 1));
        b.node("Conv", "pw2", List.of("d", b.randomInit("w2", 0.1, 64, 64, 1, 1)), List.of("p2"));
        b.node("Sigmoid", List.of("p2"), "y");
        return b.build();
    }

    static QuantizeRun.Result quantize(Model m, long[] shape, QuantOptions q) {
        return QwtOnnx.quantize(m, TestModels.gaussian("x", 8, 11, shape), QuantizeRun.Options.defaults().withQuant(q)
                .withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE)), Progress.NONE, null);
    }

    static List<String> planned(QuantizeRun.Result r) {
        return r.plan().layers().stream().map(LayerPlan::name).toList();
    }

    @Test
    void aSmallDepthwiseBetweenFloatOperatorsStaysFloat() {
        QuantizeRun.Result r = quantize(depthwiseAlone(), new long[] {1, 16, 12, 12}, JUDGED);
        assertEquals(List.of(), planned(r));
        assertTrue(r.plan().rejected().stream().anyMatch(s -> s.contains("'dw_small'") && s.contains("int8 slower than float: est.")),
                r.plan().rejected().toString());
        // Nothing to quantize: the cost model's run on the first sample is the only one, no calibration pass.
        assertEquals(0, r.timings().stream().filter(t -> t.stage().equals("calibrate")).findFirst().orElseThrow().runs());
        assertEquals(1, r.timings().stream().filter(t -> t.stage().equals("int8-cost")).findFirst().orElseThrow().runs());
        // --keep-slow-int8 quantizes it.
        QuantizeRun.Result all = quantize(depthwiseAlone(), new long[] {1, 16, 12, 12},
                QuantOptions.defaults().withKeepSlowInt8(true));
        assertEquals(List.of("dw_small"), planned(all));
    }

    @Test
    void largePointwiseAndRegularConvsAreQuantized() {
        QuantizeRun.Result r = quantize(largeConvs(), new long[] {1, 128, 28, 28}, JUDGED);
        assertEquals(List.of("pw_large", "conv3x3"), planned(r));
    }

    @Test
    void aDepthwiseInsideAnInt8ChainStaysInt8() {
        // Alone the depthwise is slower in int8; in float it would add a DQ and a Q between its int8 neighbours.
        QuantizeRun.Result r = quantize(chain(), new long[] {1, 64, 28, 28}, JUDGED);
        assertEquals(List.of("pw1", "dw", "pw2"), planned(r));
    }

    @Test
    void targetsOffOrtCpuAreNotJudged() {
        QuantOptions q = JUDGED.withTarget(Target.named("qnn"));
        QuantizeRun.Result r = quantize(depthwiseAlone(), new long[] {1, 16, 12, 12}, q);
        assertEquals(List.of("dw_small"), planned(r));
    }

    @Test
    void theSameInputGivesTheSameBytes() {
        Model m = largeConvs();
        byte[] a = quantize(m, new long[] {1, 128, 28, 28}, JUDGED).model().toBytes();
        byte[] b = quantize(m, new long[] {1, 128, 28, 28}, JUDGED).model().toBytes();
        assertArrayEquals(a, b);
        QuantizeRun.Result d1 = quantize(depthwiseAlone(), new long[] {1, 16, 12, 12}, JUDGED);
        QuantizeRun.Result d2 = quantize(depthwiseAlone(), new long[] {1, 16, 12, 12}, JUDGED);
        assertArrayEquals(d1.model().toBytes(), d2.model().toBytes());
        assertEquals(d1.plan().rejected(), d2.plan().rejected());
    }
}
