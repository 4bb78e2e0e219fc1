package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpec;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.SystemProperties;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Joining equal-shape samples into one ORT run: grouping, contents, and unchanged ranges. */
class BatchesTest {
    static Sample seq(String id, int len, float base) {
        float[] v = new float[len * 2];
        for (int i = 0; i < v.length; i++) {
            v[i] = base + i;
        }
        return new Sample(id, Map.of("x", HostTensor.ofFloats(new long[] {1, len, 2}, v)));
    }

    @Test
    void equalShapesAreJoinedInOrderAndEverySampleRunsOnce() {
        List<Sample> in = List.of(seq("a", 3, 0), seq("b", 5, 100), seq("c", 3, 200), seq("d", 3, 300), seq("e", 5, 400),
                seq("f", 7, 500));
        List<Batches.Batch> out = new ArrayList<>();
        for (Iterator<Batches.Batch> it = Batches.of(in, 2, 4); it.hasNext();) {
            out.add(it.next());
        }
        List<String> groups = out.stream().map(b -> String.join("", b.parts().stream().map(Sample::id).toList())).toList();
        assertEquals(List.of("ac", "be", "d", "f"), groups);
        for (Batches.Batch b : out) {
            for (int i = 0; i < b.count(); i++) {
                assertEquals(in.get(b.ordinals().get(i)), b.parts().get(i), "ordinals are positions in the source");
            }
        }
        HostTensor joined = out.get(0).sample().inputs().get("x");
        assertArrayEquals(new long[] {2, 3, 2}, joined.shape());
        float[] v = joined.toFloats();
        assertEquals(0f, v[0]);
        assertEquals(5f, v[5]);
        assertEquals(200f, v[6]);
        assertEquals(205f, v[11]);
    }

    /** Batches of the first samples, flushed there, are those of a pass over them alone; no batch mixes them with later ones. */
    @Test
    void samplesBeforeTheFlushAreBatchedAsIfTheDataEndedThere() {
        List<Sample> in = List.of(seq("a", 3, 0), seq("b", 5, 100), seq("c", 7, 200), seq("d", 3, 300), seq("e", 5, 400),
                seq("f", 3, 500), seq("g", 7, 600));
        for (int flushAt = 1; flushAt < in.size(); flushAt++) {
            List<List<Integer>> whole = new ArrayList<>();
            for (Iterator<Batches.Batch> it = Batches.of(in, 3, 4, flushAt); it.hasNext();) {
                whole.add(it.next().ordinals());
            }
            List<List<Integer>> alone = new ArrayList<>();
            for (Iterator<Batches.Batch> it = Batches.of(in.subList(0, flushAt), 3, 4); it.hasNext();) {
                alone.add(it.next().ordinals());
            }
            assertEquals(alone, whole.subList(0, alone.size()), "flush at " + flushAt);
            List<Integer> seen = new ArrayList<>();
            for (List<Integer> b : whole) {
                int limit = flushAt;
                assertTrue(b.stream().allMatch(o -> o < limit) || b.stream().allMatch(o -> o >= limit), b.toString());
                seen.addAll(b);
            }
            seen.sort(null);
            assertEquals(List.of(0, 1, 2, 3, 4, 5, 6), seen);
        }
    }

    /**
     * Runs in flight at once (three here, whatever the machine): outputs reach the consumer in the
     * data's order, each sample once, the same as one run at a time; what runs on the runs' own
     * threads sees every batch too.
     */
    @Test
    void concurrentRunsHandOutputsOnInTheDataOrder() {
        Model m = mlpAnyBatch();
        String out = m.graph().getOutput(0).getName();
        CalibrationSource data = lengths(4, 9, 4, 4, 9, 4, 17, 4, 9, 3, 3, 5, 6, 7, 4, 4, 9, 2, 2, 2);
        Map<Integer, float[]> sequential = new java.util.HashMap<>();
        List<List<Integer>> orders = new ArrayList<>();
        for (String threads : new String[] {"1", "3"}) {
            SystemProperties.with("qwt.ort.threads", threads, () -> {
                List<Integer> order = new ArrayList<>();
                java.util.concurrent.atomic.AtomicInteger inRun = new java.util.concurrent.atomic.AtomicInteger();
                try (OrtRunner runner = OrtRunner.forPasses(m, List.of())) {
                    assertEquals(Integer.parseInt(threads), runner.concurrentRuns());
                    Batches.run(runner, data, 3, 0, Batches.Batch::sample, b -> List.of(out), (b, o) -> {
                        inRun.addAndGet(b.count());
                        return o;
                    }, Progress.NONE, (b, o) -> {
                        float[] y = o.get(out).data();
                        int per = y.length / b.count();
                        for (int i = 0; i < b.count(); i++) {
                            order.add(b.ordinals().get(i));
                            float[] mine = java.util.Arrays.copyOfRange(y, i * per, (i + 1) * per);
                            float[] seen = sequential.putIfAbsent(b.ordinals().get(i), mine);
                            if (seen != null) {
                                assertArrayEquals(seen, mine, 1e-6f, "sample " + b.ordinals().get(i));
                            }
                        }
                    });
                }
                assertEquals(data.size(), inRun.get());
                orders.add(order);
                assertEquals(orders.get(0), order, "the order one run at a time gives");
                List<Integer> sorted = new ArrayList<>(order);
                sorted.sort(null);
                assertEquals(java.util.stream.IntStream.range(0, data.size()).boxed().toList(), sorted);
            });
        }
    }

    /**
     * Samples too large to share a run run one at a time: the runner says one run in flight, a runner made from
     * it by fixing inputs says so too, and a pass on it never has two runs going (three threads asked for).
     */
    @Test
    void samplesTooLargeToShareARunRunOneAtATime() {
        assertFalse(Batches.runsAlone(0), "not known");
        assertFalse(Batches.runsAlone(2_700_000), "a sentence's activations");
        assertFalse(Batches.runsAlone(Batches.MAX_RUN_BYTES / 2), "two still share a run");
        assertTrue(Batches.runsAlone(Batches.MAX_RUN_BYTES / 2 + 1));
        assertTrue(Batches.runsAlone(86_000_000), "a text line's through a recognizer");
        Model m = mlpAnyBatch();
        String out = m.graph().getOutput(0).getName();
        CalibrationSource data = lengths(4, 9, 4, 4, 9, 4, 17, 4, 9, 3, 3, 5);
        SystemProperties.with("qwt.ort.threads", "3", () -> {
            try (OrtRunner runner = OrtRunner.forPasses(m, List.of())) {
                assertEquals(3, runner.concurrentRuns());
                assertSame(runner, runner.oneRunAtATime());
                assertEquals(1, runner.concurrentRuns());
                try (OrtRunner fixed = runner.fixing(Map.of())) {
                    assertEquals(1, fixed.concurrentRuns());
                }
                java.util.concurrent.atomic.AtomicInteger going = new java.util.concurrent.atomic.AtomicInteger();
                java.util.concurrent.atomic.AtomicInteger most = new java.util.concurrent.atomic.AtomicInteger();
                List<Integer> order = new ArrayList<>();
                Batches.run(runner, data, 1, 0, b -> {
                    most.accumulateAndGet(going.incrementAndGet(), Math::max);
                    return b.sample();
                }, b -> List.of(out), (b, o) -> {
                    going.decrementAndGet();
                    return o;
                }, Progress.NONE, (b, o) -> order.addAll(b.ordinals()));
                assertEquals(1, most.get(), "runs going at once");
                assertEquals(java.util.stream.IntStream.range(0, data.size()).boxed().toList(), order);
            }
        });
    }

    @Test
    void largeInputsMakeSmallerBatches() {
        Sample image = new Sample("i", Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 320, 320},
                new float[3 * 320 * 320])));
        assertEquals(3, Batches.batchFor(image, 8), "3 x 307200 elements fit in 2^20");
        Sample big = new Sample("b", Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 640, 640},
                new float[3 * 640 * 640])));
        assertEquals(1, Batches.batchFor(big, 8));
        assertEquals(8, Batches.batchFor(seq("s", 128, 0), 8));
        List<Sample> bigs = List.of(big, big, big);
        int runs = 0;
        for (Iterator<Batches.Batch> it = Batches.of(bigs, 8, 64); it.hasNext(); runs++) {
            assertEquals(1, it.next().count());
        }
        assertEquals(3, runs);
    }

    @Test
    void activationsBoundTheBatch() {
        assertEquals(8, Batches.withinRunBytes(8, 0), "not known: the option's batch");
        assertEquals(8, Batches.withinRunBytes(8, 400_000), "an audio frame's activations");
        assertEquals(6, Batches.withinRunBytes(8, 2_700_000), "a sentence's");
        assertEquals(1, Batches.withinRunBytes(8, 86_000_000), "a text line's through a recognizer");
        assertEquals(1, Batches.withinRunBytes(1, 1), "never more than asked");
        assertEquals(2, Batches.withinRunBytes(8, Batches.MAX_RUN_BYTES / 2));
        assertEquals(1, Batches.withinRunBytes(8, Batches.MAX_RUN_BYTES / 2 + 1));
    }

    @Test
    void onlyModelsWithDynamicFirstDimensionsAreBatched() {
        assertTrue(Batches.batchable(List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3}))));
        assertTrue(Batches.batchable(List.of(new InputSpec("x", DataType.FLOAT, null))));
        assertFalse(Batches.batchable(List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, -1}))));
        assertFalse(Batches.batchable(List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3}),
                new InputSpec("y", DataType.FLOAT, new long[] {1}))));
    }

    /** TestModels.mlp with a dynamic batch: [B, S, 32]. */
    static Model mlpAnyBatch() {
        Model m = TestModels.mlp(3);
        var g = m.graph().toBuilder();
        g.setInput(0, OrtTestSupport.tensor("x", TensorProto.DataType.FLOAT_VALUE, -1, -1, 32));
        return m.withGraph(g.build());
    }

    static CalibrationSource lengths(int... lens) {
        List<Sample> out = new ArrayList<>();
        java.util.Random r = new java.util.Random(4);
        int i = 0;
        for (int len : lens) {
            float[] v = new float[len * 32];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) (r.nextGaussian() * 2);
            }
            out.add(new Sample("s" + (i++), Map.of("x", HostTensor.ofFloats(new long[] {1, len, 32}, v))));
        }
        return CalibrationSources.ofList(out);
    }

    @Test
    void batchedCalibrationGivesTheSameRanges() {
        Model m = mlpAnyBatch();
        List<String> tensors = new ArrayList<>(LayerMatcher.match(m, QuantOptions.defaults()).tensorsToCalibrate());
        CalibrationSource data = lengths(4, 9, 4, 4, 9, 4, 17, 4, 9);
        for (RangeMethod method : RangeMethod.values()) {
            CalibOptions o = CalibOptions.defaults().withMethod(method);
            Map<String, Range> single = new RangeCalibrator(t -> o.observer(method), 1).calibrate(m, tensors, data,
                    Progress.NONE);
            Map<String, Range> batched = new RangeCalibrator(t -> o.observer(method), 4).calibrate(m, tensors, data,
                    Progress.NONE);
            for (String t : tensors) {
                Range a = single.get(t);
                Range b = batched.get(t);
                double tol = 1e-4 * (a.max() - a.min());
                assertEquals(a.min(), b.min(), tol, method + " " + t);
                assertEquals(a.max(), b.max(), tol, method + " " + t);
            }
        }
    }

    @Test
    void aGraphThatFixesTheBatchFallsBackToSingleRuns() {
        // x [B, 4] → Reshape to [1, 4] → MatMul: a batch of 2 cannot run, one sample can.
        ModelBuilder b = new ModelBuilder(1, 13).input("x", TensorProto.DataType.FLOAT_VALUE, -1, 4)
                .output("y", TensorProto.DataType.FLOAT_VALUE, 1, 3);
        String shape = "shape";
        String r = b.node("Reshape", List.of("x", shape), "r");
        b.node("MatMul", List.of(r, b.randomInit("w", 0.5, 4, 3)), "y");
        Model m = b.build();
        m = m.withGraph(m.graph().toBuilder().addInitializer(
                HostTensor.ofLongs(new long[] {2}, new long[] {1, 4}).toProto(shape)).build());
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            samples.add(new Sample("s" + i, Map.of("x", HostTensor.ofFloats(new long[] {1, 4},
                    new float[] {i, -i, 2 * i, 0.5f}))));
        }
        Map<String, Range> ranges = new RangeCalibrator(t -> new MinMaxObserver(), 4).calibrate(m, List.of("r"),
                CalibrationSources.ofList(samples), Progress.NONE);
        assertEquals(new Range(-5f, 10f), ranges.get("r"));
    }

    /**
     * Outputs only compensation keeps are fetched for its first samples only, batched among themselves as a
     * pass over them alone batches them; the ranges do not change.
     */
    @Test
    void extraOutputsAreFetchedForTheFirstSamplesOnly() {
        Model m = mlpAnyBatch();
        List<String> tensors = new ArrayList<>(LayerMatcher.match(m, QuantOptions.defaults()).tensorsToCalibrate());
        String extra = m.graph().getOutput(0).getName();
        CalibrationSource data = lengths(4, 9, 4, 4, 9, 4, 17, 4, 9);
        Map<String, Range> all = new RangeCalibrator(t -> new MinMaxObserver(), 2).calibrate(m, tensors, data,
                Progress.NONE);
        List<List<Integer>> tapped = new ArrayList<>();
        Map<String, Range> capped;
        List<String> exposed = new ArrayList<>(tensors);
        exposed.add(extra);
        try (OrtRunner runner = OrtRunner.forPasses(m, exposed)) {
            // As calibration hands compensation the float activations of its first 4 samples.
            RangeCalibrator.Pass pass = RangeCalibrator.Pass.of(tensors).handingOver(4,
                    b -> b.ordinals().get(0) < 4 ? List.of(extra) : List.of(), (b, out) -> {
                        if (b.ordinals().get(0) < 4) {
                            assertTrue(out.containsKey(extra));
                            tapped.add(b.ordinals());
                        } else {
                            assertTrue(!out.containsKey(extra), b.ordinals().toString());
                        }
                    });
            capped = new RangeCalibrator(t -> new MinMaxObserver(), 2).calibrate(runner, m, pass, data, Progress.NONE);
        }
        assertEquals(all, capped);
        List<List<Integer>> alone = new ArrayList<>();
        for (Iterator<Batches.Batch> it = Batches.of(CalibrationSources.limit(data, 4, null), 2, Batches.WINDOW);
                it.hasNext();) {
            alone.add(it.next().ordinals());
        }
        assertEquals(alone, tapped);
    }
}
