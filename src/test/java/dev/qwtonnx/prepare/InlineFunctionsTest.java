package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.assertSameOutputs;
import static dev.qwtonnx.testutil.OrtTestSupport.randomFloats;
import static dev.qwtonnx.testutil.OrtTestSupport.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.FunctionProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A network whose modules are model-local functions, as torch's dynamo exporter and onnxscript write them: calls
 * replaced by their bodies, the same outputs as ORT computes running the functions, and the layers inside quantized.
 */
class InlineFunctionsTest {
    private static final String DOMAIN = "pkg.modules";
    private static final int D = 16;

    private static OperatorSetIdProto opset(String domain, long v) {
        return OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(v).build();
    }

    private static NodeProto node(String op, String domain, List<String> in, List<String> out, AttributeProto... a) {
        return OrtTestSupport.node(op, "", in, out, a).toBuilder().setDomain(domain).build();
    }

    /**
     * Linear(x, W, b) = x·W + b; Block(x, W1, b1, W2, b2) = x + Linear(LeakyRelu_alpha(Linear(x))), its alpha an
     * attribute of the call (0.1 where the call gives none); the model: three Blocks, the last given alpha 0.2.
     */
    static Model modules(long opsetOfBodies) {
        FunctionProto linear = FunctionProto.newBuilder().setDomain(DOMAIN).setName("Linear")
                .addAllInput(List.of("x", "W", "b")).addOutput("y")
                .addNode(node("MatMul", "", List.of("x", "W"), List.of("t")))
                .addNode(node("Add", "", List.of("t", "b"), List.of("y")))
                .addOpsetImport(opset("", opsetOfBodies)).build();
        AttributeProto alphaRef = AttributeProto.newBuilder().setName("alpha").setRefAttrName("alpha")
                .setType(AttributeProto.AttributeType.FLOAT).build();
        FunctionProto block = FunctionProto.newBuilder().setDomain(DOMAIN).setName("Block")
                .addAllInput(List.of("x", "W1", "b1", "W2", "b2")).addOutput("y")
                .addAttributeProto(AttributeProto.newBuilder().setName("alpha").setType(AttributeProto.AttributeType.FLOAT)
                        .setF(0.1f))
                .addNode(node("Linear", DOMAIN, List.of("x", "W1", "b1"), List.of("h")))
                .addNode(node("LeakyRelu", "", List.of("h"), List.of("r"), alphaRef))
                .addNode(node("Linear", DOMAIN, List.of("r", "W2", "b2"), List.of("o")))
                .addNode(node("Add", "", List.of("x", "o"), List.of("y")))
                .addOpsetImport(opset("", opsetOfBodies)).addOpsetImport(opset(DOMAIN, 1)).build();
        ModelBuilder b = new ModelBuilder(3, 17).input(tensor("x", FLOAT, 1, -1, D)).outputs("out");
        String x = "x";
        for (int l = 0; l < 3; l++) {
            List<String> in = List.of(x, b.randomInit("W1_" + l, 0.25, D, 4 * D), b.randomInit("b1_" + l, 0.1, 4 * D),
                    b.randomInit("W2_" + l, 0.12, 4 * D, D), b.randomInit("b2_" + l, 0.1, D));
            NodeProto call = OrtTestSupport.node("Block", "/block" + l + "/Block", in, List.of("y" + l)).toBuilder()
                    .setDomain(DOMAIN).build();
            if (l == 2) {
                call = call.toBuilder().addAttribute(AttributeProto.newBuilder().setName("alpha")
                        .setType(AttributeProto.AttributeType.FLOAT).setF(0.2f)).build();
            }
            b.node(call);
            x = "y" + l;
        }
        b.node("Identity", "/out", List.of(x), List.of("out"));
        Model m = b.build();
        return m.withProto(m.proto().toBuilder().addOpsetImport(opset(DOMAIN, 1)).addFunctions(linear)
                .addFunctions(block).setIrVersion(9).build());
    }

    @Test
    void callsBecomeTheirBodiesAndComputeWhatOrtComputesRunningTheFunctions() {
        Model given = modules(17);
        Model inlined = InlineFunctions.apply(given);
        ModelChecker.checkForRuntime(inlined);
        assertEquals(0, inlined.proto().getFunctionsCount());
        assertEquals(List.of(""), inlined.proto().getOpsetImportList().stream().map(OperatorSetIdProto::getDomain).toList());
        List<String> ops = inlined.graph().getNodeList().stream().map(NodeProto::getOpType).toList();
        assertEquals(6, ops.stream().filter("MatMul"::equals).count(), ops.toString());
        assertTrue(inlined.graph().getNodeList().stream().anyMatch(n -> n.getName().equals("/block1/Block/Linear/MatMul")),
                inlined.graph().getNodeList().toString());
        // The third block's alpha is its call's, the others' the function's default: ORT's own inlining computes the
        // same outputs, so a wrong alpha would show.
        assertSameOutputs(given, inlined, Map.of("x", randomFloats(new Random(4), 1, 5, D)), 1e-6);
        assertSame(inlined, InlineFunctions.apply(inlined));
    }

    @Test
    void aBodyOfAnotherOpsetIsLeftAsAFunctionWithTheReason() {
        Model given = modules(18);
        PassResult r = new InlineFunctions().run(given);
        assertFalse(r.changed());
        assertEquals(2, r.rejections().size(), r.rejections().toString());
        assertTrue(r.rejections().get(0).reason().contains("imports opset 18, the model 17"), r.rejections().toString());
    }

    /** The layers inside the functions are what quantize finds: without inlining it found none and refused the model. */
    @Test
    void theLayersInsideFunctionsAreQuantized() {
        Model given = modules(17);
        QuantizeRun.Result r = QwtOnnx.quantize(given, TestModels.gaussian("x", 5, 12, new long[] {1, 7, D}))
                .options(QuantizeRun.Options.defaults().withQuant(QuantOptions.defaults().withKeepSlowInt8(true))).run();
        assertEquals(6, r.plan().layers().size(), r.plan().rejected().toString());
    }
}
