package dev.qwtonnx.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Range;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.AheadTasks;
import dev.qwtonnx.testutil.TestModels;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** Weights rounded ahead of need (while calibration runs) give the model the quantizer gives rounding them itself. */
class RoundAheadTest {
    @Test
    void roundingAheadGivesTheSameModel() {
        for (Model m : List.of(TestModels.mlp(3), TestModels.smallCnn(7), TestModels.mlp2d(3))) {
            for (boolean reduceRange : new boolean[] {false, true}) {
                QuantOptions options = new QuantOptions(8, reduceRange, QuantOptions.defaults().outputQuantized());
                Model prepared = QwtOnnx.prepare(m, false, null);
                LayerMatcher.Result plan = LayerMatcher.match(prepared, options);
                Map<String, Range> ranges = new HashMap<>();
                for (String t : plan.tensorsToCalibrate()) {
                    ranges.put(t, new Range(-1.5f, 2.5f));
                }
                Map<String, QuantizedWeight> rounded = new HashMap<>();
                try (AheadTasks ahead = new AheadTasks("test-round-ahead")) {
                    Map<String, Supplier<QuantizedWeight>> tasks = QdqQuantizer.roundAhead(prepared, plan.layers(),
                            options, ahead);
                    assertEquals(plan.layers().size(), tasks.size());
                    ahead.start();
                    tasks.forEach((k, v) -> rounded.put(k, v.get()));
                }
                assertFalse(rounded.isEmpty());
                byte[] itself = new QdqQuantizer(options, plan.layers(), ranges).run(prepared).model().toBytes();
                byte[] ahead = new QdqQuantizer(options, plan.layers(), ranges, rounded).run(prepared).model().toBytes();
                assertArrayEquals(itself, ahead, "reduceRange " + reduceRange);
            }
        }
    }

    @Test
    void nothingIsRoundedAheadForGptq() {
        Model prepared = QwtOnnx.prepare(TestModels.mlp(3), false, null);
        QuantOptions gptq = QuantOptions.defaults().withRounding(WeightRounding.GPTQ);
        try (AheadTasks ahead = new AheadTasks("test-round-ahead")) {
            assertEquals(Map.of(), QdqQuantizer.roundAhead(prepared, LayerMatcher.match(prepared, gptq).layers(), gptq,
                    ahead));
        }
    }
}
