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
    void anOutputOfAnotherLengthIsNamedWithItsSample() {
        Fidelity.Sums sums = new Fidelity.Sums(List.of("logits"));
        QwtException e = assertThrows(QwtException.class, () -> sums.add("s7", logits(1, 2, 3), logits(1, 2)));
        assertTrue(e.getMessage().contains("'logits'") && e.getMessage().contains("s7"), e.getMessage());
    }
}
