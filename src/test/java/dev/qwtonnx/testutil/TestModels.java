package dev.qwtonnx.testutil;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Small float models built in Java ({@link ModelBuilder}), with seeded random weights, and matching
 * calibration data.
 */
public final class TestModels {
    private TestModels() {
    }

    private static final int F = TensorProto.DataType.FLOAT_VALUE;

    /**
     * x[1,3,16,16] → Conv(3→8, 3x3)+bias → Relu → Conv(8→16, 3x3, stride 2, no bias) → Relu →
     * Conv(16→16, 1x1)+bias → GlobalAveragePool → Flatten → Gemm(16→10, transB) → logits[1,10].
     */
    public static Model smallCnn(long seed) {
        ModelBuilder b = new ModelBuilder(seed, 13).input("x", F, 1, 3, 16, 16).output("logits", F, 1, 10);
        String c1 = b.node("Conv", List.of("x", b.randomInit("w1", 0.3, 8, 3, 3, 3), b.randomInit("b1", 0.1, 8)), "c1",
                Nodes.intsAttribute("pads", 1, 1, 1, 1));
        String r1 = b.node("Relu", List.of(c1), "r1");
        String c2 = b.node("Conv", List.of(r1, b.randomInit("w2", 0.15, 16, 8, 3, 3)), "c2",
                Nodes.intsAttribute("pads", 1, 1, 1, 1), Nodes.intsAttribute("strides", 2, 2));
        String r2 = b.node("Relu", List.of(c2), "r2");
        String c3 = b.node("Conv", List.of(r2, b.randomInit("w3", 0.3, 16, 16, 1, 1), b.randomInit("b3", 0.1, 16)), "c3");
        String p = b.node("GlobalAveragePool", List.of(c3), "pool");
        String f = b.node("Flatten", List.of(p), "flat");
        b.node("Gemm", List.of(f, b.randomInit("wg", 0.3, 10, 16), b.randomInit("bg", 0.1, 10)), "logits",
                Nodes.intAttribute("transB", 1));
        return b.build();
    }

    /**
     * x[1,S,32] → MatMul(32→64) → Add bias → Relu → MatMul(64→32) → Add bias → Add residual x →
     * MatMul(32→16, no bias) → y[1,S,16]. The sequence length S is dynamic.
     */
    public static Model mlp(long seed) {
        return mlp(seed, -1);
    }

    /** The same MLP with a sequence length of {@code seq} (-1: dynamic). */
    public static Model mlp(long seed, long seq) {
        ModelBuilder b = new ModelBuilder(seed, 13).input("x", F, 1, seq, 32).output("y", F, 1, seq, 16);
        String m1 = b.node("MatMul", List.of("x", b.randomInit("w1", 0.2, 32, 64)), "m1");
        String a1 = b.node("Add", List.of(m1, b.randomInit("b1", 0.1, 64)), "a1");
        String r1 = b.node("Relu", List.of(a1), "r1");
        String m2 = b.node("MatMul", List.of(r1, b.randomInit("w2", 0.2, 64, 32)), "m2");
        String a2 = b.node("Add", List.of(b.randomInit("b2", 0.1, 32), m2), "a2");
        String res = b.node("Add", List.of(a2, "x"), "res");
        b.node("MatMul", List.of(res, b.randomInit("w3", 0.2, 32, 16)), "y");
        return b.build();
    }

    /**
     * x[8,16] → MatMul(16→32) → Add bias → Relu → MatMul(32→8) → Add bias → y[8,8]: 2-D inputs,
     * which ORT's MatMulAddFusion turns into Gemms.
     */
    public static Model mlp2d(long seed) {
        ModelBuilder b = new ModelBuilder(seed, 13).input("x", F, 8, 16).output("y", F, 8, 8);
        String m1 = b.node("MatMul", List.of("x", b.randomInit("w1", 0.3, 16, 32)), "m1");
        String a1 = b.node("Add", List.of(m1, b.randomInit("b1", 0.1, 32)), "a1");
        String r1 = b.node("Relu", List.of(a1), "r1");
        String m2 = b.node("MatMul", List.of(r1, b.randomInit("w2", 0.2, 32, 8)), "m2");
        b.node("Add", List.of(b.randomInit("b2", 0.1, 8), m2), "y");
        return b.build();
    }

    /** Gaussian samples for a single float input, of the given shapes in turn. */
    public static CalibrationSource gaussian(String input, long seed, int count, long[]... shapes) {
        Random rnd = new Random(seed);
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long[] shape = shapes[i % shapes.length];
            float[] v = new float[(int) HostTensor.numel(shape)];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) (rnd.nextGaussian() + 0.2);
            }
            samples.add(new Sample("gaussian-" + i, Map.of(input, HostTensor.ofFloats(shape, v))));
        }
        return CalibrationSources.ofList(samples);
    }
}
