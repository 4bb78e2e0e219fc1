package dev.qwtonnx.target;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.verify.Fidelity;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Each target's form, as written for the bundled example: the activation and weight types, the
 * weight granularity per operator, the bias form, which outputs are re-quantized, Q/DQ on residual
 * Adds; compensation adds no node on any target, and the output runs in ORT within the fidelity of
 * its arithmetic.
 */
class TargetFormsTest {
    private static final Path MODEL = Path.of("testdata/example/cnn.onnx");
    private static final Path CALIB = Path.of("testdata/example/calib");

    static List<String> targets() {
        return Target.names();
    }

    private static Model quantize(Model f, Target t, CwacOptions.Method method) throws Exception {
        try (CalibrationSource calib = CalibrationSources.open(CALIB, InputSpecs.of(f.graph()))) {
            QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(Int8Anyway.quant().withTarget(t))
                    .withCwac(CwacOptions.defaults().withMethod(method)).withVerifyBetweenPasses(true);
            return QwtOnnx.quantize(f, calib).options(o).run().model();
        }
    }

    @ParameterizedTest
    @MethodSource("targets")
    void writesTheTargetsFormAndCompensatesWithoutAddingNodes(String name) throws Exception {
        Target t = Target.named(name);
        Model f = ModelIO.load(MODEL);
        Model plain = quantize(f, t, CwacOptions.Method.NONE);
        Model q = quantize(f, t, CwacOptions.Method.CWAC);
        assertEquals(plain.graph().getNodeCount(), q.graph().getNodeCount(), "compensation adds no node");

        GraphEditor g = new GraphEditor(q.graph());
        int layers = 0;
        for (NodeProto n : g.nodes()) {
            if (!List.of("Conv", "Gemm", "MatMul").contains(n.getOpType())) {
                continue;
            }
            NodeProto xdq = g.producer(n.getInput(0));
            NodeProto wdq = g.producer(n.getInput(1));
            if (!t.quantizes(n.getOpType())) {
                assertTrue(wdq == null, n.getName() + ": " + t.name() + " runs " + n.getOpType() + " in float only");
                continue;
            }
            layers++;
            assertEquals("DequantizeLinear", xdq.getOpType(), n.getName());
            assertEquals(t.activations().type().code, g.initializer(xdq.getInput(2)).getDataType(), n.getName());
            TensorProto xzp = g.initializer(xdq.getInput(2));
            if (t.activations().symmetric() && t.activations().type() == DataType.INT8) {
                assertEquals(0, Tensors.longs(xzp)[0], n.getName() + ": symmetric activations have zero point 0");
            }
            TensorProto ws = g.initializer(wdq.getInput(1));
            assertEquals(t.perChannel(n.getOpType()), ws.getDimsCount() == 1 && Tensors.floats(ws).length > 1,
                    n.getName() + ": per-channel weights on " + t.weights().perChannel());
            DataType wType = t.weights().type();
            assertEquals(wType.code, g.initializer(wdq.getInput(0)).getDataType(), n.getName());
            long maxAbs = 0;
            for (long v : Tensors.longs(g.initializer(wdq.getInput(0)))) {
                maxAbs = Math.max(maxAbs, Math.abs(wType == DataType.UINT8 ? v - 128 : v));
            }
            int qmax = t.weights().qmax();
            assertTrue(maxAbs <= qmax, n.getName() + ": weights within ±" + qmax);
            if (n.getInputCount() > 2) {
                TensorProto floatBias = g.initializer(n.getInput(2));
                assertEquals(t.bias() == Target.Bias.FLOAT, floatBias != null && floatBias.getDataType() == 1,
                        n.getName() + ": bias form " + t.bias());
            }
            boolean outputQ = g.consumers(n.getOutput(0)).stream().anyMatch(c -> c.getOpType().equals("QuantizeLinear")
                    || c.getOpType().equals("Relu") && g.consumers(c.getOutput(0)).stream()
                            .anyMatch(r -> r.getOpType().equals("QuantizeLinear")))
                    || g.consumers(n.getOutput(0)).isEmpty();
            if (t.outputQuantized().contains(n.getOpType())) {
                assertTrue(outputQ, n.getName() + ": output re-quantized on " + t.name());
            }
        }
        assertEquals(t.quantizes("Gemm") ? 4 : 3, layers);

        try (CalibrationSource calib = CalibrationSources.open(CALIB, InputSpecs.of(f.graph()))) {
            // Each form on its grid: this machine's ORT CPU kernels are another target's (on x86 without VNNI they
            // saturate full-range weights, which compensation does not fit: decision 0017).
            for (Fidelity.OutputFidelity o : Fidelity.measureOnGrid(f, q, calib, dev.qwtonnx.calib.Progress.NONE)) {
                assertTrue(o.meanCosine() > 0.999, t.name() + ": " + o);
            }
        }
    }

    @org.junit.jupiter.api.Test
    void qnnWithSixteenBitActivationsWritesUint16AtOpset21AndRunsCloserToFloat() throws Exception {
        Target a16 = Target.named("qnn").withActivationBits(16);
        assertEquals(DataType.UINT16, a16.activations().type());
        Model f = ModelIO.load(MODEL);
        Model q16 = quantize(f, a16, CwacOptions.Method.NONE);
        Model q8 = quantize(f, Target.named("qnn"), CwacOptions.Method.NONE);
        assertTrue(q16.opsetVersion("") >= 21, "16-bit Q/DQ are in the default domain from opset 21");
        assertTrue(q16.graph().getInitializerList().stream().anyMatch(i -> i.getDataType() == DataType.UINT16.code));
        try (CalibrationSource calib = CalibrationSources.open(CALIB, InputSpecs.of(f.graph()))) {
            double sqnr16 = Fidelity.measure(f, q16, calib, dev.qwtonnx.calib.Progress.NONE).get(0).meanSqnrDb();
            double sqnr8 = Fidelity.measure(f, q8, calib, dev.qwtonnx.calib.Progress.NONE).get(0).meanSqnrDb();
            assertTrue(sqnr16 > sqnr8, "A16W8 " + sqnr16 + " dB vs A8W8 " + sqnr8 + " dB");
        }
    }
}
