package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A runner's view that feeds fixed inputs, made into ORT tensors once, to every run; and its runs that give shapes only. */
class OrtRunnerFixingTest {
    @Test
    void fixedInputsAreFedToEveryRunAndTheSampleStillWins() {
        Model m = TestModels.smallCnn(5);
        List<Sample> samples = new ArrayList<>();
        TestModels.gaussian("x", 3, 11, new long[] {1, 3, 16, 16}).forEach(samples::add);
        List<String> outs = m.graph().getOutputList().stream().map(ValueInfoProto::getName).toList();
        try (OrtRunner r = new OrtRunner(m, List.of())) {
            HostTensor x = samples.get(0).inputs().get("x");
            try (OrtRunner fixed = r.fixing(Map.of("x", x))) {
                Map<String, FloatTensor> want = r.run(samples.get(0), outs);
                Map<String, FloatTensor> got = fixed.run(new Sample("no inputs", Map.of()), outs);
                assertArrayEquals(want.get(outs.get(0)).data(), got.get(outs.get(0)).data(), 0f);
                // A sample's own value of an input comes before the fixed one.
                Map<String, FloatTensor> own = fixed.run(samples.get(1), outs);
                assertArrayEquals(r.run(samples.get(1), outs).get(outs.get(0)).data(), own.get(outs.get(0)).data(), 0f);
            }
            // Closing the view leaves the session the runner's.
            assertEquals(outs.size(), r.run(samples.get(2), outs).size());
        }
    }

    @Test
    void shapesAreThoseOfTheOutputsARunGives() {
        Model m = TestModels.smallCnn(5);
        List<Sample> samples = new ArrayList<>();
        TestModels.gaussian("x", 3, 1, new long[] {1, 3, 16, 16}).forEach(samples::add);
        List<String> outs = m.graph().getOutputList().stream().map(ValueInfoProto::getName).toList();
        try (OrtRunner r = new OrtRunner(m, List.of())) {
            Map<String, FloatTensor> values = r.run(samples.get(0), outs);
            Map<String, long[]> shapes = r.shapes(samples.get(0), outs);
            assertEquals(outs, List.copyOf(shapes.keySet()));
            for (String o : outs) {
                assertArrayEquals(values.get(o).shape(), shapes.get(o), o);
            }
        }
    }

    /**
     * A tensor exposed for a pass keeps the type its node gives it: a float declaration of an int32 tensor (the mask
     * index of ORT's fused EmbedLayerNormalization, at a boundary of the float prefix) failed the session.
     */
    @Test
    void anExposedTensorKeepsItsNodesType() {
        dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder b = new dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder(13)
                .input("x", dev.qwtonnx.onnx.TensorProto.DataType.FLOAT_VALUE, 1, 4)
                .outputs("y");
        String mask = b.node("Cast", List.of("x"), "mask", dev.qwtonnx.model.Nodes.intAttribute("to",
                dev.qwtonnx.onnx.TensorProto.DataType.INT32_VALUE));
        String back = b.node("Cast", List.of(mask), "back", dev.qwtonnx.model.Nodes.intAttribute("to",
                dev.qwtonnx.onnx.TensorProto.DataType.FLOAT_VALUE));
        b.node("Add", List.of("x", back), "y");
        try (OrtRunner r = OrtRunner.forPasses(b.build(), List.of(mask, "y"))) {
            assertEquals(Map.of(mask, dev.qwtonnx.model.DataType.INT32.code, "y", dev.qwtonnx.model.DataType.FLOAT.code),
                    r.outputElementTypes(List.of(mask, "y")));
        }
    }

    /**
     * A process about to exit waits for the sessions closing in the background (ORT's shutdown hook would release
     * its environment under them), and a session given to the closer after that wait is closed at once.
     */
    @Test
    void sessionsClosingInTheBackgroundAreClosedOnceAwaited() {
        Model m = TestModels.smallCnn(5);
        Sample s = TestModels.gaussian("x", 3, 1, new long[] {1, 3, 16, 16}).iterator().next();
        List<String> outs = m.graph().getOutputList().stream().map(ValueInfoProto::getName).toList();
        OrtRunner before = new OrtRunner(m, List.of());
        before.closeInBackground();
        OrtRunner.awaitBackgroundCloses();
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> before.run(s, outs));
        OrtRunner after = new OrtRunner(m, List.of());
        after.closeInBackground();
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> after.run(s, outs));
    }

    /** A library call's sessions given to the closer are closed once flushed, as a call does before it returns. */
    @Test
    void sessionsGivenToTheCloserAreClosedOnceFlushed() {
        Model m = TestModels.smallCnn(5);
        Sample s = TestModels.gaussian("x", 3, 1, new long[] {1, 3, 16, 16}).iterator().next();
        List<String> outs = m.graph().getOutputList().stream().map(ValueInfoProto::getName).toList();
        for (int i = 0; i < 2; i++) {
            OrtRunner r = new OrtRunner(m, List.of());
            r.closeInBackground();
            OrtRunner.flushBackgroundCloses();
            org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> r.run(s, outs), "round " + i);
        }
    }
}
