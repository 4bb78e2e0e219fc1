package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;
import org.junit.jupiter.api.Test;

/** The default stage count follows the weights' bit width; a count the user gives is kept (decision 0007). */
class StageCountTest {
    private static QuantOptions bits(int b) {
        QuantOptions d = QuantOptions.defaults();
        return new QuantOptions(b, d.reduceRange(), d.outputQuantized(), d.rounding(), d.keepFloat(), d.floatBudget(),
                d.target(), d.keepSlowInt8());
    }

    @Test
    void fourStagesAtEightBitsEightBelow() {
        assertEquals(CwacOptions.AUTO_STAGES, CwacOptions.defaults().stages());
        assertEquals(4, QuantizeRun.Options.defaults().cwac().stages());
        assertEquals(8, QuantizeRun.Options.defaults().withQuant(bits(6)).cwac().stages());
        assertEquals(8, QuantizeRun.Options.defaults().withQuant(bits(4)).cwac().stages());
    }

    @Test
    void aCountGivenIsKeptAtEveryWidth() {
        CwacOptions perDepth = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.SEQUENTIAL, 0);
        assertEquals(0, QuantizeRun.Options.defaults().withCwac(perDepth).withQuant(bits(4)).cwac().stages());
        CwacOptions two = CwacOptions.defaults().withSchedule(CwacOptions.Schedule.SEQUENTIAL, 2);
        assertEquals(2, QuantizeRun.Options.defaults().withCwac(two).cwac().stages());
        // Read without a run (the compensator called directly): the 8-bit count.
        assertEquals(4, CwacOptions.defaults().stageCount());
    }
}
