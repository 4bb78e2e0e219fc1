package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * BatchNormalization folded into the Conv before it. Folding changes the arithmetic (one multiply
 * moved into the weights), so outputs are compared within 1e-5 (relative above 1, absolute below).
 */
class FoldBatchNormTest {
    private static final double TOL = 1e-5;
    private static final int C_IN = 3;
    private static final int C_OUT = 4;

    private static TensorProto random(Random r, String name, double std, long... dims) {
        float[] v = new float[(int) HostTensor.numel(dims)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return Tensors.floatTensor(name, dims, v);
    }

    /** BN parameters gamma, beta, mean, var (positive) for {@code c} channels. */
    private static ModelBuilder bnParams(ModelBuilder b, String prefix, int c) {
        Random r = new Random(prefix.hashCode());
        float[] var = new float[c];
        for (int i = 0; i < c; i++) {
            var[i] = 0.2f + r.nextFloat() * 2;
        }
        return b.init(random(r, prefix + "gamma", 1, c)).init(random(r, prefix + "beta", 0.5, c))
                .init(random(r, prefix + "mean", 0.3, c)).init(Tensors.floatTensor(prefix + "var", new long[] {c}, var));
    }

    private static List<String> bnInputs(String x, String prefix) {
        return List.of(x, prefix + "gamma", prefix + "beta", prefix + "mean", prefix + "var");
    }

    private static Model fold(Model in, Map<String, HostTensor> inputs) {
        PassResult r = new FoldBatchNorm().run(in);
        assertTrue(r.changed());
        assertEquals(List.of(), r.rejections());
        Model out = r.model();
        ModelChecker.check(out);
        OrtTestSupport.assertSameOutputs(in, out, inputs, TOL);
        return out;
    }

    private static Map<String, HostTensor> input(long seed) {
        return Map.of("x", randomFloats(new Random(seed), 1, C_IN, 8, 8));
    }

    private static Optional<TensorProto> initializer(Model m, String name) {
        return m.graph().getInitializerList().stream().filter(t -> t.getName().equals(name)).findFirst();
    }

    @Test
    void batchNormAfterConvWithBiasFolds() {
        Random r = new Random(1);
        Model in = bnParams(new ModelBuilder(13), "bn_", C_OUT).input(tensor("x", FLOAT, 1, C_IN, 8, 8)).outputs("y")
                .init(random(r, "w", 0.5, C_OUT, C_IN, 3, 3)).init(random(r, "b", 0.2, C_OUT))
                .node("Conv", "conv", List.of("x", "w", "b"), List.of("c"), Nodes.intsAttribute("pads", 1, 1, 1, 1))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"), Nodes.floatAttribute("epsilon", 1e-3f))
                .build();
        Model out = fold(in, input(2));
        assertEquals(0, count(out, "BatchNormalization"));
        assertEquals(List.of("Conv"), OrtTestSupport.opTypes(out));
        NodeProto conv = out.graph().getNode(0);
        assertEquals("conv", conv.getName());
        assertEquals("y", conv.getOutput(0));
        // The old weight, bias and BN parameters are gone: nothing reads them any more.
        assertEquals(2, out.graph().getInitializerCount());
    }

    @Test
    void convWithoutBiasGetsOne() {
        Random r = new Random(3);
        Model in = bnParams(new ModelBuilder(11), "bn_", C_OUT).input(tensor("x", FLOAT, 1, C_IN, 8, 8)).outputs("y")
                .init(random(r, "w", 0.5, C_OUT, C_IN, 1, 1))
                .node("Conv", "conv", List.of("x", "w"), List.of("c"))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"))
                .build();
        Model out = fold(in, input(4));
        assertEquals(3, out.graph().getNode(0).getInputCount());
    }

    @Test
    void depthwiseConvFolds() {
        Random r = new Random(5);
        Model in = bnParams(new ModelBuilder(13), "bn_", C_IN).input(tensor("x", FLOAT, 1, C_IN, 8, 8)).outputs("y")
                .init(random(r, "w", 0.5, C_IN, 1, 3, 3)).init(random(r, "b", 0.2, C_IN))
                .node("Conv", "dw", List.of("x", "w", "b"), List.of("c"), Nodes.intAttribute("group", C_IN),
                        Nodes.intsAttribute("strides", 2, 2))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"))
                .build();
        Model out = fold(in, input(6));
        assertEquals(0, count(out, "BatchNormalization"));
    }

    /**
     * A weight and a bias read by a second Conv (and BN parameters read by a second BN) are copied,
     * never changed for both: the second Conv keeps the original tensors, values intact.
     */
    @Test
    void sharedWeightIsCopiedNotChangedInPlace() {
        Random r = new Random(7);
        TensorProto w = random(r, "w", 0.5, C_OUT, C_IN, 3, 3);
        TensorProto b = random(r, "b", 0.2, C_OUT);
        Model in = bnParams(new ModelBuilder(13), "bn_", C_OUT).input(tensor("x", FLOAT, 1, C_IN, 8, 8))
                .outputs("y", "z", "y2").init(w).init(b)
                .node("Conv", "conv", List.of("x", "w", "b"), List.of("c"), Nodes.intsAttribute("pads", 1, 1, 1, 1))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"))
                .node("Conv", "other_conv", List.of("x", "w", "b"), List.of("z"), Nodes.intsAttribute("pads", 1, 1, 1, 1))
                .node("Conv", "third_conv", List.of("x", "w"), List.of("c2"))
                .node("BatchNormalization", "bn2", bnInputs("c2", "bn_"), List.of("y2"))
                .build();
        Model out = fold(in, input(8));
        assertEquals(0, count(out, "BatchNormalization"));
        NodeProto other = out.graph().getNodeList().stream().filter(n -> n.getName().equals("other_conv")).findFirst()
                .orElseThrow();
        assertEquals(List.of("x", "w", "b"), other.getInputList());
        assertEquals(w, initializer(out, "w").orElseThrow());
        assertEquals(b, initializer(out, "b").orElseThrow());
        for (NodeProto n : out.graph().getNodeList()) {
            if (!n.getName().equals("other_conv")) {
                assertFalse(n.getInputList().contains("w"), n.getName() + " still reads the shared weight");
            }
        }
        assertTrue(initializer(out, "bn_gamma").isEmpty());
    }

    @Test
    void batchNormNotAfterAConvStays() {
        Model in = bnParams(new ModelBuilder(13), "bn_", 2).input(tensor("x", FLOAT, 1, 2, 4, 4)).outputs("y")
                .node("Relu", "relu", List.of("x"), List.of("r"))
                .node("BatchNormalization", "bn", bnInputs("r", "bn_"), List.of("y"))
                .build();
        PassResult r = new FoldBatchNorm().run(in);
        assertFalse(r.changed());
        assertSame(in, r.model());
        assertEquals(List.of(new Rejection(FoldBatchNorm.NAME, "BatchNormalization node 'bn'",
                "its input is not the output of a Conv")), r.rejections());
    }

    @Test
    void batchNormWhoseConvOutputIsAlsoReadElsewhereStays() {
        Random r = new Random(9);
        Model in = bnParams(new ModelBuilder(13), "bn_", C_OUT).input(tensor("x", FLOAT, 1, C_IN, 8, 8))
                .outputs("y", "c").init(random(r, "w", 0.5, C_OUT, C_IN, 1, 1))
                .node("Conv", "conv", List.of("x", "w"), List.of("c"))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"))
                .build();
        PassResult result = new FoldBatchNorm().run(in);
        assertSame(in, result.model());
        assertEquals(List.of(new Rejection(FoldBatchNorm.NAME, "BatchNormalization node 'bn'",
                "the Conv output 'c' is also read elsewhere")), result.rejections());
    }

    /** Parameters that are also graph inputs can be overridden at run time, so they are not constants. */
    @Test
    void batchNormWithOverridableParametersStays() {
        Random r = new Random(10);
        Model in = bnParams(new ModelBuilder(13), "bn_", C_OUT).input(tensor("x", FLOAT, 1, C_IN, 8, 8))
                .input(tensor("bn_mean", FLOAT, C_OUT)).outputs("y").init(random(r, "w", 0.5, C_OUT, C_IN, 1, 1))
                .node("Conv", "conv", List.of("x", "w"), List.of("c"))
                .node("BatchNormalization", "bn", bnInputs("c", "bn_"), List.of("y"))
                .build();
        PassResult result = new FoldBatchNorm().run(in);
        assertSame(in, result.model());
        assertEquals(List.of(new Rejection(FoldBatchNorm.NAME, "BatchNormalization node 'bn'",
                "its input 'bn_mean' is not a constant float tensor of 4 values")), result.rejections());
    }
}
