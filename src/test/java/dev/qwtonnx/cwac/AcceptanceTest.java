package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.run.CompensateRun;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Output-level acceptance keeps a stage's change only where its gain on samples it was not fitted on exceeds their noise. */
class AcceptanceTest {
    private static double[] filled(int n, double v) {
        double[] a = new double[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    @Test
    void aGainMustHoldInBothHalvesAndExceedTheNoise() {
        double[] base = filled(8, 1.0);
        // The same gain on every sample: kept.
        assertTrue(StageAcceptance.gains(base, filled(8, 0.9)));
        // Lower in total, but every odd sample worse: the halves disagree.
        double[] mixed = filled(8, 1.0);
        for (int i = 0; i < 8; i++) {
            mixed[i] = i % 2 == 0 ? 0.5 : 1.2;
        }
        assertTrue(java.util.Arrays.stream(mixed).sum() < 8);
        assertFalse(StageAcceptance.gains(base, mixed));
        // One sample carries the whole gain, the others lose a little: positive in both halves' sums is not enough
        // when the mean is within the noise of zero.
        double[] outlier = {0.0, 1.0, 1.05, 0.6, 1.05, 1.05, 1.05, 1.05};
        assertTrue(java.util.Arrays.stream(outlier).sum() < 8);
        assertFalse(StageAcceptance.gains(base, outlier));
        // Nothing gained, nothing kept.
        assertFalse(StageAcceptance.gains(base, base.clone()));
        // Too few samples to split: any lower total counts.
        assertTrue(StageAcceptance.gains(new double[] {1, 1}, new double[] {0.5, 1.2}));
    }

    /**
     * Stages fitted on the calibration distribution, judged on samples alternating between that
     * distribution and a shifted one (the halves are even and odd positions): a fit that lowers the
     * fitting error but raises the shifted samples' error is not kept, so the result is no worse than
     * the input on either half, while compensating without acceptance is worse on the shifted half.
     */
    @Test
    void aFitThatHelpsTheFittingSamplesButHurtsUnseenOnesIsRejected() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>());
        Model floatModel = ForeignCompensationTest.floatModel();
        List<Sample> like = new ArrayList<>();
        TestModels.gaussian("x", 41, 8, new long[] {1, 3, 16, 16}).forEach(like::add);
        List<Sample> shifted = ForeignCompensationTest.shifted(8, 43);
        List<Sample> accept = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            accept.add(like.get(i));
            accept.add(shifted.get(i));
        }
        CwacOptions options = CwacOptions.compensateDefaults().withRidge(0);
        CompensateRun.Result plain = QwtOnnx.compensate(floatModel, theirs, ForeignCompensationTest.calib(),
                options.withAccept(CwacOptions.Accept.NONE), Progress.NONE, null);
        CompensateRun.Result judged = QwtOnnx.compensate(floatModel, theirs, ForeignCompensationTest.calib(),
                CalibrationSources.ofList(accept), options, Progress.NONE, null);
        OutputError onLike = new OutputError(floatModel, like, Grid.measures(theirs));
        OutputError onShifted = new OutputError(floatModel, shifted, Grid.measures(theirs));
        double likeBefore = onLike.of(theirs);
        double shiftedBefore = onShifted.of(theirs);
        System.out.printf("acceptance on mixed samples: calibration-like %.4g -> %.4g (no acceptance %.4g), shifted %.4g"
                + " -> %.4g (no acceptance %.4g); %s%n", likeBefore, onLike.of(judged.model()), onLike.of(plain.model()),
                shiftedBefore, onShifted.of(judged.model()), onShifted.of(plain.model()),
                judged.compensation().choices().stream().map(c -> c.choice() + " x" + c.outputScale()).toList());
        // The construction: the fits lower the fitting error and raise the shifted samples' error.
        assertTrue(plain.compensation().sseAfter() < plain.compensation().sseBefore());
        assertTrue(onShifted.of(plain.model()) > shiftedBefore, "the plain fit must hurt the shifted samples");
        // Every kept change gained on both halves, so neither half ends worse than the input.
        assertTrue(onShifted.of(judged.model()) <= shiftedBefore * (1 + 1e-9));
        assertTrue(onLike.of(judged.model()) <= likeBefore * (1 + 1e-9));
        assertEquals(16, judged.compensation().acceptanceSamples());
    }

    /** Without acceptance samples the compensator holds out a share of the calibration set and fits on the rest. */
    @Test
    void withoutAcceptanceSamplesAShareOfTheCalibrationSetJudges() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>());
        CompensateRun.Result r = QwtOnnx.compensate(ForeignCompensationTest.floatModel(), theirs,
                ForeignCompensationTest.calib(), CwacOptions.compensateDefaults(), Progress.NONE, null);
        int n = ForeignCompensationTest.calib().size();
        int held = (int) Math.round(n * StageAcceptance.OWN_ACCEPTANCE_SHARE);
        assertEquals(held, r.compensation().acceptanceSamples());
        assertFalse(r.compensation().choices().isEmpty());
    }
}
