package dev.qwtonnx.quant;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.TestModels;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** QDQ and QOperator outputs of the same compensated run, compared in ORT on fresh random inputs. */
class QOperatorLoweringTest {
    record Case(String name, Model model, CalibrationSource calib, Set<LayerKind> outputQ, long[] shape,
            Map<String, Integer> expectedOps) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        long[] img = {1, 3, 16, 16};
        long[] seq = {1, 7, 32};
        return Stream.of(
                Arguments.of(new Case("cnn", TestModels.smallCnn(3), TestModels.gaussian("x", 1, 12, img),
                        EnumSet.of(LayerKind.CONV), img, Map.of("QLinearConv", 3, "QGemm", 1))),
                Arguments.of(new Case("cnn, quantized Gemm output", TestModels.smallCnn(4),
                        TestModels.gaussian("x", 2, 12, img), EnumSet.of(LayerKind.CONV, LayerKind.GEMM), img,
                        Map.of("QLinearConv", 3, "QGemm", 1))),
                Arguments.of(new Case("mlp", TestModels.mlp(5), TestModels.gaussian("x", 3, 12, new long[] {1, 9, 32}),
                        EnumSet.of(LayerKind.CONV), seq, Map.of("MatMulIntegerToFloat", 3))),
                Arguments.of(new Case("mlp, quantized MatMul outputs", TestModels.mlp(6),
                        TestModels.gaussian("x", 4, 12, new long[] {1, 9, 32}), EnumSet.of(LayerKind.CONV, LayerKind.MATMUL),
                        seq, Map.of("MatMulIntegerToFloat", 2, "QLinearMatMul", 1))),
                // A static sequence: FullRankMatMulBias gives the biases [1, 1, N] for ORT's QDQ path; lowered, both
                // go into MatMulIntegerToFloat as [N] and only the residual Add is left.
                Arguments.of(new Case("mlp, static sequence", TestModels.mlp(8, 7),
                        TestModels.gaussian("x", 6, 12, seq), EnumSet.of(LayerKind.CONV), seq,
                        Map.of("MatMulIntegerToFloat", 3, "Add", 1))),
                // The last MatMul's bias Add reads an int32 bias through a DequantizeLinear (Int32MatMulBias).
                Arguments.of(new Case("2-D mlp", TestModels.mlp2d(7), TestModels.gaussian("x", 5, 12, new long[] {8, 16}),
                        EnumSet.of(LayerKind.CONV), new long[] {8, 16}, Map.of("MatMulIntegerToFloat", 2, "Add", 0))));
    }

    private static int count(Model m, String op) {
        return (int) OrtTestSupport.count(m, op);
    }

    /**
     * One quantization step of each output: the scale of the DequantizeLinear producing it, or for
     * a float output, a uint8 step over the output's range on these inputs.
     */
    private static double step(Model qdq, String output, HostTensor value) {
        for (NodeProto n : qdq.graph().getNodeList()) {
            if (n.getOpType().equals("DequantizeLinear") && n.getOutput(0).equals(output)) {
                return Tensors.floats(qdq.graph().getInitializerList().stream()
                        .filter(t -> t.getName().equals(n.getInput(1))).findFirst().orElseThrow())[0];
            }
        }
        float lo = Float.MAX_VALUE;
        float hi = -Float.MAX_VALUE;
        for (float v : value.toFloats()) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        return (hi - lo) / 255.0;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void qOperatorOutputsAgreeWithQdqWithinOneStep(Case c) {
        QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(new QuantOptions(8, false, c.outputQ()))
                .withCwac(CwacOptions.defaults()).withVerifyBetweenPasses(true);
        QuantizeRun.Result r = QwtOnnx.quantize(c.model(), c.calib(), o, Progress.NONE, null);
        assertTrue(r.compensation().fits().values().stream().anyMatch(f -> !f.isIdentity()), "CWAC folded something");
        Model qop = QwtOnnx.toQOperator(r.model(), true, null);

        // Every layer is an explicit integer operator; no float layer and no weight DequantizeLinear is left.
        Map<String, Integer> ops = new HashMap<>();
        for (String op : c.expectedOps().keySet()) {
            ops.put(op, count(qop, op));
        }
        assertEquals(c.expectedOps(), ops, OrtTestSupport.opTypes(qop).toString());
        for (String op : List.of("Conv", "MatMul", "Gemm")) {
            assertEquals(0, count(qop, op), op);
        }
        // Each integer operator names the float node it came from, as the QDQ layer did.
        List<String> fromQdq = r.model().graph().getNodeList().stream().map(n -> Nodes.metadata(n, Nodes.FROM))
                .filter(java.util.Objects::nonNull).sorted().toList();
        List<String> fromQop = qop.graph().getNodeList().stream().map(n -> Nodes.metadata(n, Nodes.FROM))
                .filter(java.util.Objects::nonNull).sorted().toList();
        assertEquals(r.plan().layers().size(), fromQdq.size());
        assertEquals(fromQdq, fromQop);
        for (NodeProto n : qop.graph().getNodeList()) {
            if (n.getOpType().equals("DequantizeLinear")) {
                TensorProto in = qop.graph().getInitializerList().stream().filter(t -> t.getName().equals(n.getInput(0)))
                        .findFirst().orElse(null);
                assertEquals(null, in, "a DequantizeLinear of a constant is left: " + n.getName());
            }
        }
        // Symmetric int8 weights: MatMulIntegerToFloat takes no weight zero point (its default, and MLAS's faster path).
        for (NodeProto n : qop.graph().getNodeList()) {
            if (n.getOpType().equals("MatMulIntegerToFloat")) {
                assertTrue(n.getInputCount() < 6 || n.getInput(5).isEmpty(), n.toString());
            }
        }
        // ORT runs them as they are: nothing to fuse, nothing left in float.
        Map<String, Integer> optimized = OrtKernels.optimizedOpCounts(qop);
        assertEquals(0, OrtKernels.count(optimized, OrtKernels.FLOAT_LAYER_OPS), optimized.toString());

        Random rnd = new Random(c.name().hashCode());
        double worstInSteps = 0;
        for (int i = 0; i < 8; i++) {
            HostTensor x = OrtTestSupport.randomFloats(rnd, c.shape());
            Map<String, HostTensor> a = OrtTestSupport.run(r.model(), Map.of("x", x));
            Map<String, HostTensor> b = OrtTestSupport.run(qop, Map.of("x", x));
            assertEquals(a.keySet(), b.keySet());
            for (String out : a.keySet()) {
                double step = step(r.model(), out, a.get(out));
                float[] p = a.get(out).toFloats();
                float[] q = b.get(out).toFloats();
                assertEquals(p.length, q.length);
                for (int k = 0; k < p.length; k++) {
                    double d = Math.abs(p[k] - q[k]) / step;
                    worstInSteps = Math.max(worstInSteps, d);
                    assertTrue(d <= 1.0 + 1e-6, out + "[" + k + "]: QDQ " + p[k] + " vs QOperator " + q[k] + " (step " + step + ")");
                }
            }
        }
        System.out.printf("%s: QOperator vs QDQ, worst difference %.3f steps; ops %s%n", c, worstInSteps, ops);
    }
}
