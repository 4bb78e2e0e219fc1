package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Ranges reduced inside the session are the ranges of the activations copied out whole. */
class InGraphMinMaxTest {
    /** The inputs and outputs of {@code m}'s MatMuls. */
    static List<String> matMulTensors(Model m) {
        List<String> tensors = new ArrayList<>();
        for (NodeProto n : m.graph().getNodeList()) {
            if (n.getOpType().equals("MatMul")) {
                tensors.add(n.getInput(0));
                tensors.add(n.getOutput(0));
            }
        }
        return tensors;
    }

    @Test
    void reducedRangesEqualCopiedRanges() {
        Model m = TestModels.mlp(3);
        List<String> tensors = matMulTensors(m);
        CalibrationSource data = RangeMethodsPipelineTest.withOutlier();
        Map<String, Range> copied;
        try (OrtRunner r = OrtRunner.forPasses(m, tensors)) {
            copied = new RangeCalibrator(t -> new MinMaxObserver(), 8).calibrate(r, m,
                    RangeCalibrator.Pass.of(tensors), data, Progress.NONE);
        }
        InGraphMinMax.Reduced reduced = InGraphMinMax.attach(m, tensors);
        Map<String, Range> inGraph;
        try (OrtRunner r = OrtRunner.forPasses(reduced.model(), reduced.fetched())) {
            inGraph = new RangeCalibrator(t -> new MinMaxObserver(), 8).calibrate(r, m,
                    RangeCalibrator.Pass.of(tensors).reducedAs(reduced.outputs()), data, Progress.NONE);
        }
        assertEquals(copied, inGraph);
        // The outlier (60 in the input) reaches the first MatMul's input range: the reductions see every value.
        assertEquals(60f, inGraph.get(tensors.get(0)).max());
        assertFalse(m.graph().getNodeList().stream().anyMatch(n -> n.getOpType().startsWith("Reduce")),
                "the reductions live in the measuring model only");
    }
}
