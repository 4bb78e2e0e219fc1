package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qwtonnx.testutil.ExampleData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `verify` and quantize's report on the bundled example. */
class VerifyCommandTest {
    @TempDir
    Path tmp;

    static final String MODEL = ExampleData.DIR.resolve("cnn.onnx").toString();
    static final String CALIB = ExampleData.DIR.resolve("calib").toString();

    private List<String> files() throws IOException {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void quantizeWritesBothReportsNextToItsOutputByDefault() throws IOException {
        Path out = tmp.resolve("cnn-int8.onnx");
        CliTest.Run r = CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet", "--runs", "2");
        assertEquals(0, r.code(), r.err());
        assertEquals(List.of("cnn-int8.onnx", "cnn-int8.report.html", "cnn-int8.report.json"), files());
        JsonNode json = new ObjectMapper().readTree(tmp.resolve("cnn-int8.report.json").toFile());
        assertEquals(0, json.at("/cost/nodesAddedByCompensation").asInt(-1));
        assertEquals(0, json.at("/runtime/unfused").size());
        assertEquals(4, json.at("/layers/matched").asInt());
        assertEquals(json.at("/layers/found").asInt(), json.at("/runtime/quantizedModel/integerKernels").asInt());
        assertEquals("qwt-onnx", json.at("/provenance/tool").asText());
        assertEquals(Files.size(out), json.at("/quantizedModel/sizeBytes").asLong());
        // Per layer, what compensation changed on its fitting samples; held-out figures before it only when asked.
        JsonNode layer = json.at("/layers/layers/0");
        assertTrue(layer.get("fitErrorAfter").asDouble() <= layer.get("fitErrorBefore").asDouble(), layer.toString());
        assertTrue(layer.get("fitErrorBefore").asDouble() > 0, layer.toString());
        assertTrue(layer.get("sqnrBeforeDb").isNull(), "not measured without --report-before");
        // ORT's graph of the int8 model only: the float model's would take a session of the whole float model of its
        // own (decision 0027); verify shows it.
        assertTrue(json.at("/runtime/floatModel").isNull(), json.at("/runtime").toString());
        assertTrue(Files.readString(tmp.resolve("cnn-int8.report.html")).contains("shows the float model's beside it"));
    }

    @Test
    void reportBeforeMeasuresEachLayerBeforeCompensation() throws IOException {
        Path out = tmp.resolve("cnn-int8.onnx");
        CliTest.Run r = CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet",
                "--report-before");
        assertEquals(0, r.code(), r.err());
        JsonNode json = new ObjectMapper().readTree(tmp.resolve("cnn-int8.report.json").toFile());
        for (JsonNode l : json.at("/layers/layers")) {
            assertFalse(l.get("sqnrBeforeDb").isNull(), l.toString());
            assertFalse(l.get("localSqnrBeforeDb").isNull(), l.toString());
        }
        assertTrue(Files.readString(tmp.resolve("cnn-int8.report.html")).contains("SQNR before"));
    }

    @Test
    void quantizeWritesNoReportWhenAsked() throws IOException {
        Path out = tmp.resolve("o.onnx");
        assertEquals(0, CliTest.cli(MODEL, out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet", "--no-report").code());
        assertEquals(List.of("o.onnx"), files());
    }

    @Test
    void verifyComparesTwoFilesAndWritesTheReportAsked() throws IOException {
        Path q = tmp.resolve("q.onnx");
        assertEquals(0, CliTest.cli(MODEL, q.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--quiet", "--no-report").code());
        Path html = tmp.resolve("report.html");
        CliTest.Run r = CliTest.cli("verify", MODEL, q.toString(), "--data", CALIB, "--report", html.toString(),
                "--runs", "3");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("output "), r.out());
        assertTrue(r.out().contains("layers: 4 quantized, 4 matched"), r.out());
        assertTrue(r.out().contains("quantized layers left in float: 0"), r.out());
        assertTrue(r.out().contains("over 3 runs"), r.out());
        String page = Files.readString(html);
        assertTrue(page.contains("<svg") && page.contains(q.toString()), "the page names the model");
        assertEquals(new TreeSet<>(List.of("q.onnx", "report.html")), new TreeSet<>(files()));
        // verify shows ORT's graph of the float model beside the int8 one: the example's 3 Convs and its Gemm, in float.
        Path json = tmp.resolve("report.json");
        assertEquals(0, CliTest.cli("verify", MODEL, q.toString(), "--data", CALIB, "--report", json.toString()).code());
        JsonNode runtime = new ObjectMapper().readTree(json.toFile()).at("/runtime");
        assertEquals(0, runtime.at("/floatModel/integerKernels").asInt(-1), runtime.toString());
        int floatLayers = 0;
        for (JsonNode c : runtime.at("/floatModel/opCounts")) {
            floatLayers += List.of("Conv", "FusedConv", "Gemm", "MatMul", "FusedGemm").contains(c.get("op").asText())
                    ? c.get("count").asInt() : 0;
        }
        assertEquals(4, floatLayers, runtime.toString());
        assertTrue(page.contains("float model: op"), "both graphs on verify's page");
    }

    @Test
    void verifyUserErrorsAreOneLine() throws IOException {
        Path q = tmp.resolve("q.onnx");
        CliTest.Run missing = CliTest.cli("verify", MODEL, q.toString(), "--data", CALIB);
        assertEquals(Main.USER_ERROR, missing.code());
        assertTrue(missing.err().contains(q.toString()), missing.err());
        assertEquals(1, missing.err().strip().split("\n").length, missing.err());

        CliTest.Run badReport = CliTest.cli("verify", MODEL, MODEL, "--data", CALIB, "--report", tmp.resolve("r.pdf").toString());
        assertEquals(Main.USER_ERROR, badReport.code());
        assertTrue(badReport.err().contains("r.pdf"), badReport.err());
        assertEquals(1, badReport.err().strip().split("\n").length, badReport.err());
        assertEquals(List.of(), files());
    }

    /**
     * A float model whose nodes have no names (as some converters and onnx.helper write them), declared at an IR
     * version newer than ORT reads (what Python's onnx 1.23 writes): quantize reads it at ORT's newest and says so,
     * and verify measures each layer against its own float node. With every node unnamed, verify used to measure
     * each layer against the graph's last node, and ORT refused the graph it made.
     */
    @Test
    void anUnnamedFloatModelOfANewerIrVersionQuantizesAndVerifiesLayerByLayer() throws IOException {
        dev.qwtonnx.model.Model example = dev.qwtonnx.model.ModelIO.load(Path.of(MODEL));
        dev.qwtonnx.onnx.ModelProto.Builder b = example.proto().toBuilder()
                .setIrVersion(dev.qwtonnx.prepare.IrVersionForOrt.ORT_MAX_IR_VERSION + 1);
        for (dev.qwtonnx.onnx.NodeProto.Builder n : b.getGraphBuilder().getNodeBuilderList()) {
            n.clearName();
        }
        Path in = tmp.resolve("unnamed.onnx");
        dev.qwtonnx.model.ModelIO.save(new dev.qwtonnx.model.Model(b.build()), in, null);
        Path out = tmp.resolve("unnamed-int8.onnx");
        CliTest.Run q = CliTest.cli(in.toString(), out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--no-report");
        assertEquals(0, q.code(), q.err());
        assertTrue(q.err().contains("note: unnamed.onnx: the model declares IR version "
                + (dev.qwtonnx.prepare.IrVersionForOrt.ORT_MAX_IR_VERSION + 1)), q.err());
        assertEquals(dev.qwtonnx.prepare.IrVersionForOrt.ORT_MAX_IR_VERSION,
                dev.qwtonnx.model.ModelIO.load(out).proto().getIrVersion());
        Path report = tmp.resolve("verify.json");
        CliTest.Run v = CliTest.cli("verify", in.toString(), out.toString(), "--data", CALIB, "--runs", "0",
                "--report", report.toString());
        assertEquals(0, v.code(), v.err());
        JsonNode layers = new ObjectMapper().readTree(report.toFile()).at("/layers");
        assertEquals(4, layers.at("/found").asInt(), layers.toString());
        assertEquals(4, layers.at("/matched").asInt(), layers.toString());
        for (JsonNode l : layers.at("/layers")) {
            // Each against a float node of its own kind, and as close as an 8-bit layer is to it.
            assertEquals(l.get("opType").asText(), l.get("floatNode").asText().replaceAll("_\\d+$", ""), l.toString());
            assertTrue(l.get("localSqnrDb").asDouble() > 20, l.toString());
        }
    }

    /**
     * A classifier that returns ArgMax indices only: quantize, verify and compensate measure the logits those come
     * from, and say so. The fidelity pass used to ask ORT for no output at all, and the run failed.
     */
    @Test
    void aModelWithIndexOutputsOnlyIsMeasuredOnTheFloatTensorsTheyComeFrom() throws IOException {
        dev.qwtonnx.model.Model example = dev.qwtonnx.model.ModelIO.load(Path.of(MODEL));
        dev.qwtonnx.onnx.ModelProto.Builder b = example.proto().toBuilder();
        b.getGraphBuilder().addNode(dev.qwtonnx.testutil.OrtTestSupport.node("ArgMax", "label", List.of("logits"),
                List.of("label"), dev.qwtonnx.model.Nodes.intAttribute("axis", 1)));
        b.getGraphBuilder().clearOutput().addOutput(dev.qwtonnx.testutil.OrtTestSupport.tensor("label",
                dev.qwtonnx.testutil.OrtTestSupport.INT64, 1, 1));
        Path in = tmp.resolve("labels.onnx");
        dev.qwtonnx.model.ModelIO.save(new dev.qwtonnx.model.Model(b.build()), in, null);
        Path out = tmp.resolve("labels-int8.onnx");
        String note = "note: the model has no float output: fidelity is measured on 'logits'";
        CliTest.Run q = CliTest.cli(in.toString(), out.toString(), "--calib", CALIB, CliTest.INT8_ANYWAY, "--no-report");
        assertEquals(0, q.code(), q.err());
        assertTrue(q.out().contains(note), q.out());
        assertTrue(q.out().contains("  logits: cosine mean 0.99"), q.out());
        CliTest.Run v = CliTest.cli("verify", in.toString(), out.toString(), "--data", CALIB, "--runs", "0");
        assertEquals(0, v.code(), v.err());
        assertTrue(v.out().contains(note) && v.out().contains("output logits: cosine mean 0.99"), v.out());
        CliTest.Run c = CliTest.cli("compensate", in.toString(), out.toString(), tmp.resolve("labels-c.onnx").toString(),
                "--calib", CALIB);
        assertEquals(0, c.code(), c.err());
        assertTrue(c.out().contains(note) && c.out().contains("  logits: SQNR "), c.out());
    }
}
