package dev.qwtonnx.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.ExampleData;
import java.util.List;
import org.junit.jupiter.api.Test;

class FidelityPassTest {
    /**
     * A pass without a report times nothing and makes its sessions as a pass does (no prepacked float weights, no
     * threads spinning between runs): the same figures as the timed pass, within float summation order, and no
     * latency.
     */
    @Test
    void anUntimedPassGivesTheTimedPasssFiguresAndNoLatency() throws Exception {
        Model f = ModelIO.load(ExampleData.DIR.resolve("cnn.onnx"));
        try (CalibrationSource data = CalibrationSources.open(ExampleData.DIR.resolve("calib"), InputSpecs.of(f.graph()))) {
            Model q = QwtOnnx.quantize(f, data).options(QuantizeRun.Options.defaults()  // int8 even where slower
                    .withQuant(QuantOptions.defaults().withKeepSlowInt8(true))).run().model();
            Fidelity.Timed timed = Fidelity.measureTimed(f, q, data, 0, Progress.NONE, null, 0);
            Fidelity.Timed untimed = Fidelity.measureUntimed(f, q, data, Progress.NONE, null, 0);
            assertNotNull(timed.latency(), "a timed pass of " + data.size() + " samples has a latency");
            assertNull(untimed.latency());
            assertTrue(first(timed).meanSqnrDb() < 100, "the model is quantized: " + first(timed));
            List<Fidelity.OutputFidelity> a = timed.outputs();
            List<Fidelity.OutputFidelity> b = untimed.outputs();
            assertEquals(a.size(), b.size());
            for (int i = 0; i < a.size(); i++) {
                assertEquals(a.get(i).samples(), b.get(i).samples());
                assertEquals(a.get(i).meanCosine(), b.get(i).meanCosine(), 1e-6, a.get(i) + " / " + b.get(i));
                assertEquals(a.get(i).meanSqnrDb(), b.get(i).meanSqnrDb(), 0.01, a.get(i) + " / " + b.get(i));
            }
        }
    }

    private static Fidelity.OutputFidelity first(Fidelity.Timed t) {
        return t.outputs().get(0);
    }
}
