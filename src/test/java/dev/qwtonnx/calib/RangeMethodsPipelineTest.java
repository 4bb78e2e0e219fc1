package dev.qwtonnx.calib;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Range methods and per-tensor overrides reach the quantized model's activation scales. */
class RangeMethodsPipelineTest {
    @TempDir
    Path tmp;

    /** 40 Gaussian samples of [1, 64, 32]; one value of one sample is an outlier at 60. */
    static CalibrationSource withOutlier() {
        Random r = new Random(11);
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            float[] v = new float[64 * 32];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) r.nextGaussian();
            }
            if (i == 7) {
                v[100] = 60f;
            }
            out.add(new Sample("s" + i, Map.of("x", HostTensor.ofFloats(new long[] {1, 64, 32}, v))));
        }
        return CalibrationSources.ofList(out);
    }

    /** The scale of the QuantizeLinear reading {@code tensor} in the quantized model. */
    static float activationScale(Model m, String tensor) {
        for (NodeProto n : m.graph().getNodeList()) {
            if (n.getOpType().equals("QuantizeLinear") && n.getInput(0).equals(tensor)) {
                for (TensorProto t : m.graph().getInitializerList()) {
                    if (t.getName().equals(n.getInput(1))) {
                        return Tensors.toHost(t).toFloats()[0];
                    }
                }
            }
        }
        throw new AssertionError("no QuantizeLinear reads " + tensor);
    }

    static QuantizeRun.Result quantize(Model m, CalibOptions calib) {
        return QwtOnnx.quantize(m, withOutlier(), Int8Anyway.options()
                .withCwac(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE)).withCalib(calib), Progress.NONE, null);
    }

    @Test
    void clippingMethodsGiveTheInputAFinerScaleThanMinMax() {
        Model m = TestModels.mlp(1);
        float minMax = activationScale(quantize(m, CalibOptions.defaults()).model(), "x");
        assertEquals(60.0 + 4.5, minMax * 255, 1.5, "MinMax covers the outlier");
        for (RangeMethod method : List.of(RangeMethod.PERCENTILE, RangeMethod.ENTROPY)) {
            float s = activationScale(quantize(m, CalibOptions.defaults().withMethod(method)).model(), "x");
            assertTrue(s < minMax / 3, method + " scale " + s + " vs minmax " + minMax);
        }
        // One outlier among 82k values costs MSE more clipped than kept; it trims the range only a little.
        float mse = activationScale(quantize(m, CalibOptions.defaults().withMethod(RangeMethod.MSE)).model(), "x");
        assertTrue(mse < minMax * 0.98 && mse > minMax / 3, "MSE scale " + mse + " vs minmax " + minMax);
    }

    @Test
    void overridesPickTheMethodByTensorThenByReadingOpInFileOrder() throws IOException {
        Model m = QwtOnnx.prepare(TestModels.mlp(1), false, null);
        List<String> tensors = new ArrayList<>(LayerMatcher.match(m, QuantOptions.defaults()).tensorsToCalibrate());
        assertEquals(3, tensors.size(), tensors.toString());
        String x = tensors.get(0);
        String hidden = tensors.get(1);
        String residual = tensors.get(2);
        assertEquals("x", x);
        Path f = tmp.resolve("ranges.json");
        // x is read by a MatMul and by the residual Add: the first op rule in the file decides.
        Files.writeString(f, "{\"ops\": {\"Add\": \"percentile\", \"MatMul\": \"MSE\"}, \"tensors\": {\"" + residual
                + "\": \"entropy\"}}");
        RangeOverrides o = RangeOverrides.read(f);
        assertEquals(Map.of(x, RangeMethod.PERCENTILE, hidden, RangeMethod.MSE, residual, RangeMethod.ENTROPY),
                o.resolve(m.graph(), tensors, RangeMethod.MINMAX));
        Files.writeString(f, "{\"ops\": {\"MatMul\": \"mse\", \"Add\": \"percentile\"}}");
        assertEquals(Map.of(x, RangeMethod.MSE, hidden, RangeMethod.MSE, residual, RangeMethod.MSE),
                RangeOverrides.read(f).resolve(m.graph(), tensors, RangeMethod.MINMAX));
        Files.writeString(f, "{\"ops\": {\"Conv\": \"mse\"}}");
        assertEquals(Map.of(x, RangeMethod.MINMAX, hidden, RangeMethod.MINMAX, residual, RangeMethod.MINMAX),
                RangeOverrides.read(f).resolve(m.graph(), tensors, RangeMethod.MINMAX));

        // In a run: x calibrated with MinMax by name while everything else uses MSE.
        Files.writeString(f, "{\"tensors\": {\"x\": \"minmax\"}}");
        CalibOptions calib = CalibOptions.defaults().withMethod(RangeMethod.MSE).withOverrides(RangeOverrides.read(f));
        QuantizeRun.Result r = quantize(TestModels.mlp(1), calib);
        float minMax = activationScale(quantize(TestModels.mlp(1), CalibOptions.defaults()).model(), "x");
        assertEquals(minMax, activationScale(r.model(), "x"));
    }

    @Test
    void overrideFileErrorsNameTheFileAndTheEntry() throws IOException {
        Path f = tmp.resolve("bad.json");
        Files.writeString(f, "{\"ops\": {\"MatMul\": \"kl\"}}");
        QwtException e = assertThrows(QwtException.class, () -> RangeOverrides.read(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("MatMul")
                && e.getMessage().contains("'kl'"), e.getMessage());
        Files.writeString(f, "{\"op\": {}}");
        assertTrue(assertThrows(QwtException.class, () -> RangeOverrides.read(f)).getMessage().contains("\"op\""));
        Files.writeString(f, "{\"ops\": ");
        assertTrue(assertThrows(QwtException.class, () -> RangeOverrides.read(f)).getMessage().contains("not valid JSON"));
        Files.writeString(f, "{\"tensors\": {\"no_such_tensor\": \"mse\"}}");
        RangeOverrides o = RangeOverrides.read(f);
        Model m = TestModels.mlp(1);
        assertTrue(assertThrows(QwtException.class, () -> quantize(m, CalibOptions.defaults().withOverrides(o)))
                .getMessage().contains("'no_such_tensor'"));
        assertThrows(QwtException.class, () -> CalibOptions.defaults().withPercentile(0));
        assertThrows(QwtException.class, () -> CalibOptions.defaults().withPercentile(100.5));
    }
}
