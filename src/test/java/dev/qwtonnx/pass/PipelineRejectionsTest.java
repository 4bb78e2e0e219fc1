package dev.qwtonnx.pass;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.prepare.FoldBatchNorm;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pipeline hands on every pass's rejections, in order, and logs each after its pass's line. */
class PipelineRejectionsTest {
    /** Leaves the model as it is, for the reasons it is given. */
    private record Leaves(String name, List<Rejection> reasons) implements Pass {
        @Override
        public PassResult run(Model model) {
            return PassResult.unchanged(model, reasons);
        }
    }

    @Test
    void rejectionsOfEveryPassAreLoggedAndReturned() {
        Rejection a = new Rejection("first", "MatMul node 'm1'", "its weight is not a constant 2-D tensor");
        Rejection b = new Rejection("third", "Add node 'a2'", "it is read twice");
        Pipeline p = new Pipeline(List.of(new Leaves("first", List.of(a)), new Leaves("second", List.of()),
                new Leaves("third", List.of(b))), false);
        Model in = TestModels.mlp2d(1);
        List<String> log = new ArrayList<>();
        Pipeline.Result r = p.apply(in, log::add);
        assertSame(in, r.model());
        assertEquals(List.of(a, b), r.rejections());
        assertEquals(List.of("first: no change",
                "first: left MatMul node 'm1': its weight is not a constant 2-D tensor",
                "second: no change", "third: no change", "third: left Add node 'a2': it is read twice"), log);
        assertSame(in, p.run(in, null));
    }

    @Test
    void aBatchNormalizationLeftUnfoldedIsLogged() {
        float[] ones = {1, 1};
        ModelBuilder b = new ModelBuilder(13).input(tensor("x", FLOAT, 1, 2, 4, 4)).outputs("y");
        for (String p : List.of("gamma", "beta", "mean", "var")) {
            b.init(Tensors.floatTensor(p, new long[] {2}, ones));
        }
        Model in = b.node("Relu", "relu", List.of("x"), List.of("r"))
                .node("BatchNormalization", "bn", List.of("r", "gamma", "beta", "mean", "var"), List.of("y")).build();
        List<String> log = new ArrayList<>();
        Pipeline.Result r = new Pipeline(List.of(new FoldBatchNorm()), true).apply(in, log::add);
        assertEquals(List.of(FoldBatchNorm.NAME + ": no change", FoldBatchNorm.NAME
                + ": left BatchNormalization node 'bn': its input is not the output of a Conv"), log);
        assertEquals(1, r.rejections().size());
    }
}
