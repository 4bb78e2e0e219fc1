package dev.qwtonnx.run;

import dev.qwtonnx.api.QwtOnnx;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.MinMaxObserver;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.e2e.LoopScanCoverageTest;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Known answers for the ranges of Loop/Scan body tensors: the range over all iterations equals the
 * union of the ranges of the same tensors in the computation unrolled into a flat graph (or, for a
 * Scan's slice, the range of the whole input computed in Java), whether the body exports whole
 * tensors or each iteration's min and max.
 */
class LoopBodiesCalibrationTest {
    private static final QuantOptions Q = Int8Anyway.quant();
    /** Small input weights and a positive recurrent bias: the first state and the later ones span different ranges. */
    private static final double W_IN = 0.03;
    private static final float OFFSET = 1.5f;

    private static Model prepared(Model m) {
        return QuantizeRun.prepare(m, false, s -> { });
    }

    /** The union of the MinMax ranges of h_0 .. h_{steps-1} in the unrolled RNN. */
    private static Range unrolled(long steps, CalibrationSource calib) {
        Model flat = LoopScanCoverageTest.unrolledRnn(steps, W_IN, OFFSET);
        List<String> states = new ArrayList<>();
        for (int k = 0; k < steps; k++) {
            states.add("h_" + k);
        }
        Map<String, Range> r = new RangeCalibrator(MinMaxObserver::new).calibrate(flat, states, calib, Progress.NONE);
        Range all = null;
        for (Range x : r.values()) {
            all = all == null ? x : all.union(x);
        }
        return all;
    }

    private static void assertRange(Range expected, Range actual) {
        float tol = 1e-6f * Math.max(Math.abs(expected.min()), Math.abs(expected.max()));
        assertEquals(expected.min(), actual.min(), tol, "min: expected " + expected + ", measured " + actual);
        assertEquals(expected.max(), actual.max(), tol, "max: expected " + expected + ", measured " + actual);
    }

    @Test
    void aLoopStateRangeIsTheRangeOverEveryIteration() {
        CalibrationSource calib = TestModels.gaussian("x", 4, 12, new long[] {1, 16});
        Range expected = unrolled(5, calib);
        // Neither the first nor the last state alone spans it: a measurement that missed iterations would differ.
        Map<String, Range> ends = new RangeCalibrator(MinMaxObserver::new).calibrate(
                LoopScanCoverageTest.unrolledRnn(5, W_IN, OFFSET), List.of("h_0", "h_4"), calib, Progress.NONE);
        for (Range one : ends.values()) {
            assertTrue(one.min() > expected.min() || one.max() < expected.max(), ends + " vs " + expected);
        }
        Model m = prepared(LoopScanCoverageTest.rnnLoop(5, W_IN, OFFSET));
        for (boolean extremes : List.of(true, false)) {
            Map<List<String>, Map<String, Range>> r = LoopBodies.bodyRanges(m, calib, CalibOptions.defaults(), Q,
                    extremes);
            assertEquals(List.of(List.of("rnn")), List.copyOf(r.keySet()));
            assertEquals(List.of("h"), List.copyOf(r.get(List.of("rnn")).keySet()));
            assertRange(expected, r.get(List.of("rnn")).get("h"));
        }
    }

    @Test
    void aNestedLoopStateIsThreadedOutLevelByLevel() {
        CalibrationSource calib = TestModels.gaussian("x", 5, 10, new long[] {1, 16});
        Model m = prepared(LoopScanCoverageTest.nestedRnn(2, 3, W_IN, OFFSET));
        Range expected = unrolled(6, calib);
        for (boolean extremes : List.of(true, false)) {
            Map<List<String>, Map<String, Range>> r = LoopBodies.bodyRanges(m, calib, CalibOptions.defaults(), Q,
                    extremes);
            assertEquals(List.of(List.of("rnn", "inner_rnn")), List.copyOf(r.keySet()));
            assertRange(expected, r.get(List.of("rnn", "inner_rnn")).get("h"));
        }
        // End to end: the inner body holds the Q/DQ, ORT fuses it at depth 2.
        QuantizeRun.Result q = QwtOnnx.quantize(LoopScanCoverageTest.nestedRnn(2, 3, 0.3, 0f), calib, Int8Anyway.options(),
                Progress.NONE, null);
        assertEquals(1, q.loopLayers(), q.loopBodies().toString());
        Map<String, Integer> ops = OrtKernels.opCounts(OrtKernels.optimized(q.model()));
        assertEquals(3, OrtKernels.count(ops, OrtKernels.INTEGER_OPS), ops.toString());
        for (Fidelity.OutputFidelity f : Fidelity.measure(q.prepared(), q.model(), calib, Progress.NONE)) {
            System.out.println("nested loop fidelity " + f);
            assertTrue(f.minCosine() > 0.995 && f.meanSqnrDb() > 30, f.toString());
        }
    }

    @Test
    void aScanSliceRangeIsTheRangeOfTheWholeSequence() {
        CalibrationSource calib = TestModels.gaussian("seq", 6, 8, new long[] {6, 2, 8});
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (Sample s : calib) {
            for (float v : s.inputs().get("seq").toFloats()) {
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
        }
        Model m = prepared(LoopScanCoverageTest.scanModel(6));
        for (boolean extremes : List.of(true, false)) {
            Range r = LoopBodies.bodyRanges(m, calib, CalibOptions.defaults(), Q, extremes).get(List.of("scan"))
                    .get("x_t");
            assertEquals(new Range(min, max), r, "extremes=" + extremes);
        }
    }

    @Test
    void aTensorThatChangesShapeFallsBackToPerIterationExtremes() {
        CalibrationSource calib = TestModels.gaussian("x", 7, 6, new long[] {1, 8});
        Model m = prepared(LoopScanCoverageTest.growingLoop());
        QwtException e = assertThrows(QwtException.class,
                () -> LoopBodies.bodyRanges(m, calib, CalibOptions.defaults(), Q, false));
        assertTrue(e.getMessage().contains("Inconsistent shape"), e.getMessage());
        Range extremes = LoopBodies.bodyRanges(m, calib, CalibOptions.defaults(), Q, true).get(List.of("grow")).get("s");
        List<String> log = new ArrayList<>();
        QuantizeRun.Options o = Int8Anyway.options();
        QuantizeRun.Result r = QwtOnnx.quantize(LoopScanCoverageTest.growingLoop(), calib,
                o.withCalib(o.calib().withMethod(RangeMethod.PERCENTILE)), Progress.NONE, log::add);
        assertTrue(log.stream().anyMatch(s -> s.contains("changes shape between iterations")), log.toString());
        assertEquals(1, r.loopLayers());
        for (Fidelity.OutputFidelity f : Fidelity.measure(r.prepared(), r.model(), calib, Progress.NONE)) {
            assertTrue(f.minCosine() > 0.99, f.toString());
        }
        assertTrue(extremes.min() < 0 && extremes.max() > 0, extremes.toString());
    }
}
