package dev.qwtonnx.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.FloatTensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FidelitySumsTest {
    private static Map<String, FloatTensor> logits(float... v) {
        return Map.of("logits", new FloatTensor(v, new long[] {1, v.length}));
    }

    @Test
    void summarisesCosineSqnrAndTopOneOverSamples() {
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        sums.add("a", logits(1, 2, 3), logits(1, 2, 3));
        sums.add("b", logits(3, 2, 1), logits(1, 2, 3.5f));
        Fidelity.OutputFidelity o = sums.result().get(0);
        assertEquals(2, o.samples());
        // Sample b: (3, 2, 1)·(1, 2, 3.5) = 10.5 over √14 · √17.25.
        assertEquals(10.5 / Math.sqrt(14 * 17.25), o.minCosine(), 1e-6);
        assertEquals((1 + o.minCosine()) / 2, o.meanCosine(), 1e-12);
        assertEquals("b", o.worstSample());
        assertEquals(0.5, o.top1Agreement(), 0.0, "sample a agrees, b does not");
        assertTrue(o.meanSqnrDb() > o.minSqnrDb());
    }

    @Test
    void theMeanSqnrIsThatOfTheSamplesEnergiesNeitherLiftedByAnExactSampleNorSunkByASilentOne() {
        // Two samples with an error of a tenth of their signal's energy (10 dB), one the quantized model gets exactly
        // (a saturated softmax, say) and one of almost no signal (a page without text): the mean of the
        // decibels read (10 + 10 + 200 - 20) / 4 = 50 dB, a mean of the error ratios (0.1 + 0.1 + 0 + 100) / 4, -14 dB.
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        sums.add("a", logits(3, 1), logits(2, 1));
        sums.add("b", logits(1, 3), logits(1, 2));
        sums.add("exact", logits(0, 1), logits(0, 1));
        sums.add("silent", logits(0.01f, 0), logits(0, 0.1f));
        Fidelity.OutputFidelity o = sums.result().get(0);
        double signal = 10 + 10 + 1 + 1e-4;
        double noise = 1 + 1 + 0 + 1e-4 + 1e-2;
        assertEquals(10 * Math.log10(signal / noise), o.meanSqnrDb(), 1e-6);
        assertEquals("silent", o.worstSample());
        OutputMetric.Figure target = OutputMetric.sqnr("logits").figure();
        target.add(logits(3, 1), logits(2, 1));
        target.add(logits(1, 3), logits(1, 2));
        target.add(logits(0, 1), logits(0, 1));
        target.add(logits(0.01f, 0), logits(0, 0.1f));
        assertEquals(o.meanSqnrDb(), target.value(), 1e-6, "the accuracy target's SQNR is the summary's");
        OutputMetric.Figure exact = OutputMetric.sqnr("logits").figure();
        exact.add(logits(0, 1), logits(0, 1));
        assertEquals(200, exact.value(), 0.0, "all exact");
    }

    /**
     * A wake-word score that underflows to 0 on other speech: a sample whose float output is all zeros has no SQNR of
     * its own, so the worst sample is another one, and no figure is infinite.
     */
    @Test
    void aSampleOfNoSignalIsNeitherTheWorstNorInfinite() {
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        sums.add("zero", logits(0, 0), logits(3e-8f, 0));
        sums.add("a", logits(3, 1), logits(2, 1));
        sums.add("b", logits(1, 3), logits(1, 2.9f));
        Fidelity.OutputFidelity o = sums.result().get(0);
        assertEquals("a", o.worstSample());
        assertEquals(10, o.minSqnrDb(), 1e-9, "sample a: 10 over 1");
        Fidelity.Sums silent = new Fidelity.Sums(List.of("logits"));
        silent.add("zero", logits(0, 0), logits(3e-8f, 0));
        Fidelity.OutputFidelity s = silent.result().get(0);
        assertEquals(-200, s.meanSqnrDb(), 0.0);
        assertEquals(-200, s.minSqnrDb(), 0.0);
        assertEquals("zero", s.worstSample());
        assertEquals(-200, Fidelity.sqnrDb(new float[] {0}, new float[] {1}), 0.0);
    }

    /**
     * One value per sample (a voice-activity probability): each sample's cosine is 1 whenever the signs agree, so the
     * figures are the cosine of the samples' values together, in the summary and in an accuracy target alike.
     */
    @Test
    void theCosineOfAOneValueOutputIsTakenAcrossSamples() {
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        OutputMetric.Figure target = OutputMetric.cosine("logits").figure();
        float[][] f = {{0.9f}, {0.1f}, {0.5f}};
        float[][] q = {{0.6f}, {0.3f}, {0.5f}};
        for (int i = 0; i < f.length; i++) {
            sums.add("s" + i, logits(f[i]), logits(q[i]));
            target.add(logits(f[i]), logits(q[i]));
        }
        Fidelity.OutputFidelity o = sums.result().get(0);
        double across = (0.9 * 0.6 + 0.1 * 0.3 + 0.25) / Math.sqrt((0.81 + 0.01 + 0.25) * (0.36 + 0.09 + 0.25));
        assertTrue(across < 0.95, "the error shows: " + across);
        assertEquals(across, o.meanCosine(), 1e-6);
        assertEquals(across, o.minCosine(), 1e-6);
        assertEquals(across, target.value(), 1e-6, "the accuracy target's cosine is the summary's");
    }

    @Test
    void anOutputOfAnotherLengthIsNamedWithItsSample() {
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        QwtException e = assertThrows(QwtException.class, () -> sums.add("s7", logits(1, 2, 3), logits(1, 2)));
        assertTrue(e.getMessage().contains("'logits'") && e.getMessage().contains("s7"), e.getMessage());
    }
}
