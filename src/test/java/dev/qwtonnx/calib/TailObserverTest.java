package dev.qwtonnx.calib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Percentile ranges from the tails: the order statistics of all the values, in the session or out of it. */
class TailObserverTest {
    /** 30 observations of 1000 to 3813 Gaussian values, of standard deviation 1, or 1 to 3 where {@code skewed}. */
    private static List<float[]> batches(boolean skewed) {
        Random r = new Random(3);
        List<float[]> batches = new ArrayList<>();
        for (int b = 0; b < 30; b++) {
            float[] v = new float[1000 + 97 * b];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (r.nextGaussian() * (skewed ? 1 + b % 3 : 1));
            }
            batches.add(v);
        }
        return batches;
    }

    private static float[] sorted(List<float[]> batches) {
        float[] all = new float[batches.stream().mapToInt(v -> v.length).sum()];
        int at = 0;
        for (float[] v : batches) {
            System.arraycopy(v, 0, all, at, v.length);
            at += v.length;
        }
        Arrays.sort(all);
        return all;
    }

    @Test
    void theRangeIsThePercentileOfAllValuesSeen() {
        List<float[]> batches = batches(false);
        float[] all = sorted(batches);
        int total = all.length;
        for (double p : new double[] {99.99, 99.9, 99}) {
            TailObserver o = new TailObserver(p);
            TailObserver reversed = new TailObserver(p);
            batches.forEach(o::observe);
            for (int b = batches.size() - 1; b >= 0; b--) {
                reversed.observe(batches.get(b));
            }
            int cut = (int) Math.floor((100 - p) / 200 * total);
            assertEquals(new Range(all[cut], all[total - 1 - cut]), o.range(), "p = " + p);
            assertEquals(o.range(), reversed.range(), "the order of observations does not matter");
        }
        TailObserver few = new TailObserver(99.99);
        few.observe(new float[] {3, 1, 2});
        assertEquals(new Range(1, 3), few.range(), "three values: every one in both tails");
        TailObserver hundred = new TailObserver(100);
        batches.forEach(hundred::observe);
        assertEquals(new Range(all[0], all[total - 1]), hundred.range(), "100 % keeps min and max");
    }

    @Test
    void whereOneObservationHoldsMoreThanTwiceItsShareTheTailIsCutFurtherIn() {
        List<float[]> batches = batches(true); // a third of them three times as wide: they hold most of the tails
        float[] all = sorted(batches);
        int cut = (int) Math.floor(0.0005 * all.length);
        TailObserver o = new TailObserver(99.9);
        batches.forEach(o::observe);
        Range r = o.range();
        assertTrue(r.min() > all[cut] && r.max() < all[all.length - 1 - cut], r + " inside the exact percentile");
        assertTrue(r.min() < all[4 * cut] && r.max() > all[all.length - 1 - 4 * cut], r + " not far inside");
    }

    @Test
    void aLoneOutlierIsClippedAndNonFiniteValuesAreSkipped() {
        float[] v = new float[100_000];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i % 1000) / 1000f;
        }
        v[5] = 60f;
        v[6] = Float.NaN;
        v[7] = Float.POSITIVE_INFINITY;
        TailObserver o = new TailObserver(99.99);
        o.observe(v);
        assertTrue(o.range().max() < 1f, o.range().toString());
        assertEquals(0f, o.range().min());
    }

    @Test
    void tailsReducedInTheSessionGiveTheRangesOfTheCopiedValues() {
        Model m = TestModels.mlp(3);
        List<String> tensors = InGraphMinMaxTest.matMulTensors(m);
        CalibrationSource data = RangeMethodsPipelineTest.withOutlier();
        Map<String, Range> copied;
        try (OrtRunner r = OrtRunner.forPasses(m, tensors)) {
            copied = new RangeCalibrator(t -> new TailObserver(99.9), 8).calibrate(r, m,
                    RangeCalibrator.Pass.of(tensors), data, Progress.NONE);
        }
        InGraphMinMax.Reduced reduced = InGraphTails.attach(InGraphMinMax.attach(m, List.of()), tensors,
                99.9);
        Map<String, Range> inGraph;
        try (OrtRunner r = OrtRunner.forPasses(reduced.model(), reduced.fetched())) {
            inGraph = new RangeCalibrator(t -> new TailObserver(99.9), 8).calibrate(r, m,
                    RangeCalibrator.Pass.of(tensors).reducedAs(reduced.outputs()), data, Progress.NONE);
        }
        assertEquals(copied, inGraph);
        // The outlier (60 in the input) is clipped: the tails keep a share of 0.05 % on each side.
        assertTrue(inGraph.get(tensors.get(0)).max() < 10f, inGraph.get(tensors.get(0)).toString());
        assertFalse(m.graph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("TopK")),
                "the reductions live in the measuring model only");
    }
}
