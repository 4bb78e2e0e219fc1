package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.run.VerifyRun;
import dev.qwtonnx.target.RuleChecker;
import dev.qwtonnx.target.Target;
import dev.qwtonnx.target.Violation;
import dev.qwtonnx.testutil.ExampleData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `verify --target` on the bundled example as `quantize` writes it for ORT's CPU provider in QDQ form (u8
 * activations, s8 weights), the form the accelerator targets' rules read.
 */
class VerifyTargetCliTest {
    @TempDir
    static Path tmp;

    static final String MODEL = ExampleData.DIR.resolve("cnn.onnx").toString();
    static final String CALIB = ExampleData.DIR.resolve("calib").toString();
    static Path quantized;

    @BeforeAll
    static void quantizeTheExample() {
        quantized = tmp.resolve("cnn-int8.onnx");
        CliTest.Run r = CliTest.cli(MODEL, quantized.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet",
                "--no-report", "--format", "qdq");
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void theDefaultFormIsQOperatorAndBreaksNoRuleOfTheCpuTargets() throws IOException {
        Path out = tmp.resolve("cnn-default.onnx");
        CliTest.Run r = CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet", "--no-report");
        assertEquals(0, r.code(), r.err());
        var model = ModelIO.load(out);
        List<String> ops = model.graph().getNodeList().stream().map(n -> n.getOpType()).distinct().sorted().toList();
        assertTrue(ops.contains("QLinearConv") && ops.contains("QGemm") && !ops.contains("Conv"), ops.toString());
        for (String t : List.of("cpu", "cpu-vnni", "arm64", "wasm")) {
            assertEquals(List.of(), RuleChecker.check(model, Target.named(t)), t);
        }
        // XNNPACK: QGemm is not its operator, and QLinearConv breaks the same u8·s8 rule as the QDQ Conv.
        List<Violation> xnn = RuleChecker.check(model, Target.named("xnnpack"));
        assertTrue(xnn.stream().anyMatch(v -> v.rule().id().equals("microsoft-domain") && v.opType().equals("QGemm")));
        assertEquals(3, xnn.stream().filter(v -> v.rule().id().equals("xnnpack.u8s8") && v.opType().equals("QLinearConv"))
                .count(), xnn.toString());

        // The cpu target's 7-bit grid is checked on the operator's own weight.
        var g = new dev.qwtonnx.model.GraphEditor(model.graph());
        NodeProto conv = g.nodes().stream().filter(n -> n.getOpType().equals("QLinearConv")).findFirst().orElseThrow();
        TensorProto w = g.initializer(conv.getInput(3));
        byte[] raw = w.getRawData().toByteArray();
        raw[0] = 100;
        g.putInitializer(w.toBuilder().setRawData(com.google.protobuf.ByteString.copyFrom(raw)).build());
        List<Violation> cpu = RuleChecker.check(model.withGraph(g.build()), Target.named("cpu"));
        assertEquals(List.of(conv.getName()), cpu.stream().filter(v -> v.rule().id().equals("weight-range"))
                .map(Violation::node).toList(), cpu.toString());
    }

    @Test
    void theDefaultOutputBreaksXnnpacksU8S8RuleAndKeepsCpuVnnis() throws IOException {
        var model = ModelIO.load(quantized);
        List<Violation> xnn = RuleChecker.check(model, Target.named("xnnpack"));
        List<String> u8s8 = xnn.stream().filter(v -> v.rule().id().equals("xnnpack.u8s8")).map(Violation::node).toList();
        assertEquals(List.of("conv_0", "conv_2", "conv_4"), u8s8, xnn.toString());
        assertEquals(List.of(), RuleChecker.check(model, Target.named("cpu-vnni")));
    }

    @Test
    void verifyTargetXnnpackNamesTheRuleItsSourceAndThatNothingRanOnTheDevice() throws IOException {
        Path json = tmp.resolve("xnnpack.json");
        CliTest.Run r = CliTest.cli("verify", MODEL, quantized.toString(), "--data", CALIB, "--runs", "0",
                "--target", "xnnpack", "--report", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("target xnnpack: " + VerifyRun.RULES_ONLY_NOTE), r.out());
        assertTrue(r.out().contains("xnnpack.u8s8 (3): u8 activations with s8 weights is not a pair XNNPACK takes"),
                r.out());
        assertTrue(r.out().contains("source: onnxruntime/core/providers/xnnpack/nn/conv_base.cc"), r.out());
        JsonNode target = new ObjectMapper().readTree(json.toFile()).get("target");
        assertEquals("xnnpack", target.get("name").asText());
        assertEquals("RULES_ONLY", target.get("runtime").asText());
        long u8s8 = 0;
        for (JsonNode v : target.get("violations")) {
            u8s8 += v.get("rule").asText().equals("xnnpack.u8s8") ? 1 : 0;
        }
        assertEquals(3, u8s8, target.toString());
        boolean listed = false;
        for (JsonNode rule : target.get("rules")) {
            listed |= rule.get("id").asText().equals("xnnpack.u8s8") && !rule.get("source").asText().isBlank();
        }
        assertTrue(listed, "the report lists the rule with its source");
    }

    @Test
    void verboseListsEveryViolationAndNoTargetLeavesTheReportKeyNull() throws IOException {
        CliTest.Run r = CliTest.cli("verify", MODEL, quantized.toString(), "--data", CALIB, "--runs", "0",
                "--target", "xnnpack", "--verbose");
        assertEquals(0, r.code(), r.err());
        for (String node : List.of("conv_0", "conv_2", "conv_4")) {
            assertTrue(r.out().contains("Conv " + node + ": u8 activations with s8 weights"), r.out());
        }
        Path json = tmp.resolve("none.json");
        assertEquals(0, CliTest.cli("verify", MODEL, quantized.toString(), "--data", CALIB, "--runs", "0", "--quiet",
                "--report", json.toString()).code());
        assertTrue(new ObjectMapper().readTree(json.toFile()).get("target").isNull());
    }

    @Test
    void anUnknownTargetIsAOneLineUserError() {
        CliTest.Run r = CliTest.cli("verify", MODEL, quantized.toString(), "--data", CALIB, "--target", "tpu");
        assertEquals(Main.USER_ERROR, r.code());
        assertTrue(r.err().contains("unknown target 'tpu'"), r.err());
        assertEquals(1, r.err().strip().split("\n").length, r.err());
    }
}
