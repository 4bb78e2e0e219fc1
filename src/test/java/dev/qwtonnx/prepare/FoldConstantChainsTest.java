package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.PassTestCase;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Identity, Cast, Reshape and Transpose of constants fold into initializers of the node's output name;
 * ORT's outputs stay the same bit for bit. The inputs they leave unused stay for
 * {@link RemoveUnusedInitializers}.
 */
class FoldConstantChainsTest extends PassTestCase {
    @Override
    protected Pass pass() {
        return new FoldConstantChains();
    }

    private static TensorProto floats(String name, long[] dims, float... v) {
        return Tensors.floatTensor(name, dims, v);
    }

    private static TensorProto iota(String name, long... dims) {
        float[] v = new float[Math.toIntExact(HostTensor.numel(dims))];
        for (int i = 0; i < v.length; i++) {
            v[i] = i * 0.25f - 3;
        }
        return Tensors.floatTensor(name, dims, v);
    }

    @Test
    void aTransposedWeightBecomesAnInitializer() {
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 4, 3)).outputs("y")
                        .init(floats("w", new long[] {2, 3}, 1, 2, 3, 4, 5, 6))
                        .node("Transpose", "t", List.of("w"), List.of("w_t"))
                        .node("MatMul", "mm", List.of("x", "w_t"), List.of("y"))
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 4, 3)).outputs("y")
                        .init(floats("w", new long[] {2, 3}, 1, 2, 3, 4, 5, 6))
                        .init(floats("w_t", new long[] {3, 2}, 1, 4, 2, 5, 3, 6))
                        .node("MatMul", "mm", List.of("x", "w_t"), List.of("y"))
                        .build());
    }

    /** A Cast to float, a Reshape and an Identity in a row fold in one run, each into its own initializer. */
    @Test
    void aWholeChainFoldsInOneRun() {
        test(new ModelBuilder(13).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                        .init(Tensors.int64Tensor("ints", new long[] {6}, new long[] {0, 1, 2, 3, 4, 5}))
                        .init(Tensors.int64Tensor("shape", new long[] {2}, new long[] {2, -1}))
                        .node("Cast", "cast", List.of("ints"), List.of("f"), Nodes.intAttribute("to", FLOAT))
                        .node("Reshape", "reshape", List.of("f", "shape"), List.of("r"))
                        .node("Identity", "id", List.of("r"), List.of("k"))
                        .node("Add", "add", List.of("x", "k"), List.of("y"))
                        .build(),
                new ModelBuilder(13).input(tensor("x", FLOAT, 2, 3)).outputs("y")
                        .init(Tensors.int64Tensor("ints", new long[] {6}, new long[] {0, 1, 2, 3, 4, 5}))
                        .init(Tensors.int64Tensor("shape", new long[] {2}, new long[] {2, -1}))
                        .init(floats("f", new long[] {6}, 0, 1, 2, 3, 4, 5))
                        .init(floats("r", new long[] {2, 3}, 0, 1, 2, 3, 4, 5))
                        .init(floats("k", new long[] {2, 3}, 0, 1, 2, 3, 4, 5))
                        .node("Add", "add", List.of("x", "k"), List.of("y"))
                        .build());
    }

    /** Longer chains with permutations and Reshape's 0 and -1, checked against ORT rather than by hand. */
    @Test
    void constantChainsFoldExactlyAsOrtComputesThem() {
        long[] seq = new long[24];
        for (int i = 0; i < seq.length; i++) {
            seq[i] = i * 7 - 50;
        }
        Model out = rewrite(new ModelBuilder(13).input(tensor("x", FLOAT, 3, 4, 2)).input(tensor("z", FLOAT, 2, 3, 4))
                .outputs("y", "u")
                .init(iota("a", 2, 3, 4))
                .init(Tensors.int64Tensor("shape", new long[] {3}, new long[] {0, -1, 2}))
                .init(Tensors.int64Tensor("ints", new long[] {4, 2, 3}, seq))
                // a [2,3,4] → Transpose(2,0,1) → [4,2,3] → Reshape(0,-1,2) → [4,3,2] → Transpose() → [2,3,4] → Identity
                .node("Transpose", "t1", List.of("a"), List.of("at"), Nodes.intsAttribute("perm", 2, 0, 1))
                .node("Reshape", "r1", List.of("at", "shape"), List.of("ar"))
                .node("Transpose", "t2", List.of("ar"), List.of("art"))
                .node("Identity", "i1", List.of("art"), List.of("c"))
                .node("Add", "add", List.of("z", "c"), List.of("u"))
                // int64 [4,2,3] → Transpose(1,2,0) → [2,3,4] → Cast to float → Transpose(1,2,0) → [3,4,2]
                .node("Transpose", "t3", List.of("ints"), List.of("it"), Nodes.intsAttribute("perm", 1, 2, 0))
                .node("Cast", "c1", List.of("it"), List.of("itf"), Nodes.intAttribute("to", FLOAT))
                .node("Transpose", "t4", List.of("itf"), List.of("k"), Nodes.intsAttribute("perm", 1, 2, 0))
                .node("Mul", "mul", List.of("x", "k"), List.of("y"))
                .build());
        assertEquals(List.of("Add", "Mul"), OrtTestSupport.opTypes(out));
    }

    @Test
    void nodesReadingARuntimeValueOrWritingAGraphOutputOrCastingToIntegersStay() {
        testSame(new ModelBuilder(13).input(tensor("x", FLOAT, 2, 3)).outputs("y", "w_t")
                .init(iota("w", 3, 2))
                .node("Transpose", "tx", List.of("x"), List.of("xt"))
                .node("Transpose", "tw", List.of("w"), List.of("w_t"))
                .node("Add", "add", List.of("xt", "w"), List.of("y"))
                .node("Cast", "to_int", List.of("w"), List.of("w_int"), Nodes.intAttribute("to", INT64))
                .build());
    }
}
