package dev.qwtonnx.quant;

import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.CompensateRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.ChannelFit;
import dev.qwtonnx.cwac.CwacFold;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.cwac.QdqLayer;
import dev.qwtonnx.cwac.QdqLayers;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * MatMuls with a 2-D input, which ORT's MatMulAddFusion makes Gemms of, run integer at the top
 * level: the bias Add of the one whose output stays float reads an int32 bias through a
 * DequantizeLinear, so ORT fuses QGemm; CWAC finds and folds into that form.
 */
class Int32MatMulBiasTest {
    private static final CalibrationSource CALIB = TestModels.gaussian("x", 19, 24, new long[] {8, 16});

    private static QuantizeRun.Result quantize(CwacOptions cwac) {
        return QwtOnnx.quantize(TestModels.mlp2d(9), CALIB, Int8Anyway.options().withCwac(cwac), Progress.NONE,
                null);
    }

    /** The int32 tensor a DequantizeLinear feeding {@code add} reads, or null. */
    private static TensorProto int32BiasOf(Model m, String addOutput) {
        GraphEditor g = new GraphEditor(m.graph());
        NodeProto add = g.producer(addOutput);
        for (String in : add.getInputList()) {
            NodeProto p = g.producer(in);
            if (p != null && p.getOpType().equals("DequantizeLinear") && g.initializer(p.getInput(0)) != null
                    && g.initializer(p.getInput(0)).getDataType() == TensorProto.DataType.INT32_VALUE) {
                return g.initializer(p.getInput(0));
            }
        }
        return null;
    }

    @Test
    void everyLayerRunsIntegerInOrtAndStaysCloseToFloat() {
        QuantizeRun.Result r = quantize(CwacOptions.defaults());
        // The last layer's output is the graph's (float): its Add reads an int32 bias. The first one's output is
        // re-quantized for the second layer (Relu → Q), and ORT quantizes its float bias itself.
        assertNotNull(int32BiasOf(r.model(), "y"));
        assertNull(int32BiasOf(r.model(), "a1"));
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(2, ops.getOrDefault("QGemm", 0), ops.toString());
        assertEquals(0, OrtKernels.count(ops, OrtKernels.FLOAT_LAYER_OPS), ops.toString());

        Random rnd = new Random(4);
        double worst = 1;
        for (int i = 0; i < 8; i++) {
            Map<String, HostTensor> x = Map.of("x", OrtTestSupport.randomFloats(rnd, 8, 16));
            float[] f = OrtTestSupport.run(r.prepared(), x).get("y").toFloats();
            float[] q = OrtTestSupport.run(r.model(), x).get("y").toFloats();
            worst = Math.min(worst, Fidelity.cosine(f, q));
        }
        System.out.printf("2-D MLP: ORT ops %s, worst cosine to float %.5f%n", ops, worst);
        assertTrue(worst > 0.995, "cosine " + worst);
    }

    /**
     * Made-up gains and shifts folded one layer at a time, run in ORT (the last layer as QGemm with
     * the refolded int32 bias): each layer's output becomes a·y + b per column, within half a step
     * of the bias at its new scale x_scale·w_scale[c]·a[c]. A bias refolded at a wrong scale would
     * be off by far more, and ORT would not say so.
     */
    @Test
    void foldedGainAndShiftReachTheQGemmOutput() {
        Model base = quantize(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE)).model();
        List<QdqLayer> layers = QdqLayers.find(base).layers();
        assertEquals(2, layers.size());
        QdqLayer last = layers.get(1);
        assertEquals(LayerKind.MATMUL, last.kind());
        assertNotNull(last.biasQuantized());
        assertNotNull(last.biasScale());
        assertEquals("y", last.output());
        Sample sample = CALIB.iterator().next();
        Random rnd = new Random(3);
        for (QdqLayer l : layers) {
            double[] a = new double[l.channels()];
            double[] b = new double[l.channels()];
            for (int c = 0; c < a.length; c++) {
                a[c] = 0.8 + 0.4 * rnd.nextDouble();
                b[c] = (rnd.nextDouble() - 0.5) * 0.4;
            }
            Model folded = new CwacFold(List.of(l), Map.of(l.name(), new ChannelFit(a, b, 1, 0, 1))).run(base).model();
            assertEquals(base.graph().getNodeList(), folded.graph().getNodeList());
            assertEquals(OrtKernels.optimizedOpCounts(base), OrtKernels.optimizedOpCounts(folded));
            float[] wScale = Tensors.floats(new GraphEditor(base.graph()).initializer(l.weightScale()));
            float[] y;
            float[] y2;
            try (OrtRunner p = new OrtRunner(base, List.of(l.output()));
                    OrtRunner q = new OrtRunner(folded, List.of(l.output()))) {
                y = p.run(sample, List.of(l.output())).get(l.output()).data();
                y2 = q.run(sample, List.of(l.output())).get(l.output()).data();
            }
            for (int i = 0; i < y.length; i++) {
                int c = i % l.channels();
                double expected = a[c] * y[i] + b[c];
                // The last layer's int32 bias is refolded from its int32 values: half a step at x_scale·w_scale'[c].
                // The first layer's float bias (its output exposed, ORT runs a float Gemm) is rounded by ORT itself
                // at x_scale·w_scale[c], before and after the fold: a step.
                double steps = l.biasQuantized() != null ? 0.5 : 1.0;
                double tol = steps * a[c] * l.inputScale() * wScale[c] * (1 + 1e-3) + 1e-5 * (1 + Math.abs(expected));
                assertEquals(expected, y2[i], tol, l.name() + " element " + i);
            }
        }
    }

    @Test
    void compensateFindsAndFoldsTheInt32BiasForm() {
        QuantizeRun.Result none = quantize(CwacOptions.defaults().withMethod(CwacOptions.Method.NONE));
        CompensateRun.Result r = QwtOnnx.compensate(TestModels.mlp2d(9), none.model(), CALIB,
                CwacOptions.compensateDefaults().withAccept(CwacOptions.Accept.NONE), Progress.NONE, null);
        assertEquals(2, r.compensation().layers().size(), r.compensation().skipped().toString());
        assertEquals(none.model().graph().getNodeList(), r.model().graph().getNodeList());
        TensorProto before = int32BiasOf(none.model(), "y");
        TensorProto after = int32BiasOf(r.model(), "y");
        assertTrue(!before.equals(after), "the int32 bias was refolded");
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(2, ops.getOrDefault("QGemm", 0), ops.toString());
    }
}
