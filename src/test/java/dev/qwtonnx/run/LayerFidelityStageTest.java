package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

class LayerFidelityStageTest {
    /** The per-layer pass runs one sample at a time exactly where calibration and compensation do. */
    @Test
    void runsOneAtATimeWhereTheSamplesActivationsAreLarge() {
        // A sentence through a small encoder: 128 tokens of 384, a few dozen tensors.
        Map<String, long[]> sentence = Map.of("h0", new long[] {1, 128, 384}, "h1", new long[] {1, 128, 1536});
        // A text line through a recognizer's first dozen layers: 64 channels at 24 x 320 (about 24 MB).
        Map<String, long[]> line = new java.util.HashMap<>();
        for (int i = 0; i < 12; i++) {
            line.put("c" + i, new long[] {1, 64, 24, 320});
        }
        assertFalse(LayerFidelityStage.pass(sentence).oneRunAtATime());
        assertTrue(LayerFidelityStage.pass(line).oneRunAtATime());
        assertTrue(LayerFidelityStage.pass(line).together());
        assertFalse(LayerFidelityStage.pass(Map.of()).oneRunAtATime(), "shapes not known");
        assertTrue(CalibrateStage.runsAlone(line) && !CalibrateStage.runsAlone(sentence));
    }
}
