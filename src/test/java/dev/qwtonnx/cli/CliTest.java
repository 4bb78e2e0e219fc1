package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.testutil.ExampleData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line on the bundled example, and the user errors of the main path. */
class CliTest {
    @TempDir
    Path tmp;

    record Run(int code, String out, String err) {
    }

    static Run cli(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    /**
     * The bundled example is too small for int8 to pay: by default the cost model keeps its layers float.
     * Tests of the int8 path ask for them anyway, as tools/example.sh does.
     */
    static final String INT8_ANYWAY = "--keep-slow-int8";

    static final String MODEL = ExampleData.DIR.resolve("cnn.onnx").toString();
    static final String CALIB = ExampleData.DIR.resolve("calib").toString();

    /**
     * Each run builds only the subcommand it names (Main.commandLine): help still lists them all, and each
     * subcommand's own help and the implicit quantize still work.
     */
    @Test
    void helpListsEverySubcommandAndEachOneStillParsesAlone() {
        for (String[] asks : List.of(new String[] {"--help"}, new String[] {"help"})) {
            Run top = cli(asks);
            assertEquals(0, top.code(), top.err());
            for (String sub : List.of("quantize", "verify", "compensate", "help")) {
                assertTrue(top.out().lines().anyMatch(l -> l.trim().startsWith(sub + " ") || l.trim().equals(sub)),
                        String.join(" ", asks) + " lists " + sub + ":\n" + top.out());
            }
        }
        for (String sub : List.of("quantize", "verify", "compensate")) {
            Run alone = cli(sub, "--help");
            assertEquals(0, alone.code(), alone.err());
            assertTrue(alone.out().contains("Usage: qwt-onnx " + sub), alone.out());
            Run viaHelp = cli("help", sub);
            assertEquals(0, viaHelp.code(), viaHelp.err());
            assertTrue(viaHelp.out().contains("Usage: qwt-onnx " + sub), viaHelp.out());
        }
        Run missing = cli(tmp.resolve("missing.onnx").toString(), tmp.resolve("out.onnx").toString(), "--calib", CALIB);
        assertEquals(Main.USER_ERROR, missing.code(), missing.err());
        assertEquals(1, missing.err().lines().count(), missing.err());
        // verify's own option for its samples, named before any model is read: the word chose verify's parser
        Run incomplete = cli("verify", "a.onnx", "b.onnx");
        assertEquals(Main.USER_ERROR, incomplete.code(), incomplete.err());
        assertEquals("qwt-onnx: error: no samples: give --data DIR, --calib-images DIR, --calib-audio DIR or --calib-text "
                + "FILE", incomplete.err().strip());
    }

    /** By default the example's layers, all estimated slower in int8, stay float, and the summary says why and how to overrule. */
    @Test
    void byDefaultLayersThatDoNotPayInInt8StayFloatAndTheSummarySaysSo() {
        Path out = tmp.resolve("cnn-float.onnx");
        Run r = cli(MODEL, out.toString(), "--calib", CALIB, "--no-report");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("quantized 0 layers (4 left in float)"), r.out());
        assertEquals(4, r.out().lines().filter(l -> l.startsWith("left in float: ") && l.contains("int8 slower than float: est."))
                .count(), r.out());
        assertTrue(r.out().contains("the output is the prepared float model; --keep-slow-int8 quantizes them anyway"), r.out());
        Model m = ModelIO.load(out);
        assertTrue(m.graph().getNodeList().stream().noneMatch(n -> n.getOpType().equals("QuantizeLinear")));
    }

    @Test
    void quantizesTheBundledExample() {
        Path out = tmp.resolve("cnn-int8.onnx");
        Run r = cli(MODEL, out.toString(), "--calib", CALIB, INT8_ANYWAY);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("quantized 4 layers"), r.out());
        assertTrue(r.out().contains("fidelity on 4 held-out samples"), r.out());
        assertTrue(r.out().contains("ORT integer kernels: 4 for 4 quantized layers"), r.out());
        assertTrue(r.out().contains("left in float by ORT: none"), r.out());
        Model m = ModelIO.load(out);
        List<String> keys = m.proto().getMetadataPropsList().stream().map(StringStringEntryProto::getKey).toList();
        assertTrue(keys.containsAll(List.of("qwt.tool", "qwt.version", "qwt.options")), keys.toString());
        assertTrue(m.graph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("DequantizeLinear")));
        assertEquals(List.of(), leftovers());
    }

    /** --target-opset raises the model to that opset before quantizing; the layers still run as integer kernels. */
    @Test
    void verboseListsTheStagesWithTheirTimesAndTheReportListsTheRunsDecisions() throws IOException {
        Path out = tmp.resolve("kept.onnx");
        Run r = cli(MODEL, out.toString(), "--calib", CALIB, INT8_ANYWAY, "--keep-float", "conv_2", "--verbose");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("quantize stages: prepare -> plan-layers -> start-ahead"
                + " -> float-session -> int8-cost -> plan-compensation -> calibrate"), r.err());
        for (String stage : List.of("prepare", "calibrate", "compensate", "save", "report")) {
            assertTrue(r.err().matches("(?s).*  stage " + stage + ": \\d+\\.\\d{3} s( \\(\\d+ ORT sessions?, \\d+ runs?\\))?\\n.*"),
                    stage + " in " + r.err());
        }
        // Stages that run ORT say how many sessions and runs: where their time goes.
        // The float session is made where it first runs: int8-cost's run that reads the activations' shapes.
        assertTrue(r.err().matches("(?s).*  stage float-session: \\d+\\.\\d{3} s\\n.*"), r.err());
        assertTrue(r.err().matches("(?s).*  stage int8-cost: \\d+\\.\\d{3} s \\(1 ORT session, 1 run\\)\\n.*"), r.err());
        assertTrue(r.err().matches("(?s).*  stage calibrate: \\d+\\.\\d{3} s \\(0 ORT sessions, [1-9]\\d* runs?\\)\\n.*"), r.err());
        com.fasterxml.jackson.databind.JsonNode json = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(tmp.resolve("kept.report.json").toFile());
        com.fasterxml.jackson.databind.JsonNode decisions = json.get("decisions");
        assertEquals(1, decisions.size(), decisions.toString());
        assertEquals("plan-layers", decisions.get(0).get("stage").asText());
        assertTrue(decisions.get(0).get("subject").asText().contains("conv_2"), decisions.toString());
        assertTrue(decisions.get(0).get("reason").asText().contains("kept in float as asked"), decisions.toString());
        // The report's latency is the fidelity pass's runs, timed (the first held-out sample's warm up): the report
        // stage opens no session and runs nothing of its own.
        assertTrue(r.err().matches("(?s).*  stage fidelity: \\d+\\.\\d{3} s \\(2 ORT sessions, 8 runs\\)\\n.*"), r.err());
        assertTrue(r.err().matches("(?s).*  stage report: \\d+\\.\\d{3} s\\n.*"), r.err());
        com.fasterxml.jackson.databind.JsonNode cost = json.get("cost");
        assertEquals(3, cost.get("runs").asInt(), cost.toString());
        assertEquals(3, cost.get("latencySamples").asInt(), cost.toString());
        assertTrue(cost.get("latencySample").isNull(), cost.toString());
        assertTrue(cost.get("speedup").asDouble() > 0, cost.toString());
        assertTrue(cost.get("floatLatency").get("minMs").asDouble() <= cost.get("floatLatency").get("maxMs").asDouble());
    }

    /**
     * Without a report the fidelity pass is untimed, and the float model's outputs on the held-out samples come from
     * calibration's float session, run after its pass: the fidelity stage makes the quantized model's session alone,
     * and the summary's figures are those of a run whose fidelity pass runs the float model in a session of its own.
     */
    @Test
    void withoutAReportTheFidelityPassReadsTheFloatOutputsFromCalibrationsSession() throws IOException {
        Run plain = cli(MODEL, tmp.resolve("plain.onnx").toString(), "--calib", CALIB, INT8_ANYWAY, "--no-report",
                "--verbose");
        assertEquals(0, plain.code(), plain.err());
        assertTrue(plain.err().matches("(?s).*  stage fidelity: \\d+\\.\\d{3} s \\(1 ORT session, 4 runs\\)\\n.*"),
                plain.err());
        // Where compensation's time went: its 4 stages' measuring passes, no candidate judged (quantize does not judge).
        assertTrue(plain.err().contains("  compensation's time: measuring "), plain.err());
        assertTrue(plain.err().matches("(?s).*compensation's time: measuring \\d+\\.\\d\\d s \\([1-4] pass(es)?\\)\\n.*"),
                plain.err());
        // Calibration ran the 4 held-out samples beside its own: int8-cost's session, no other.
        assertTrue(plain.err().matches("(?s).*  stage calibrate: \\d+\\.\\d{3} s \\(0 ORT sessions, \\d+ runs\\)\\n.*"),
                plain.err());
        Run reported = cli(MODEL, tmp.resolve("reported.onnx").toString(), "--calib", CALIB, INT8_ANYWAY, "--verbose");
        assertEquals(0, reported.code(), reported.err());
        assertTrue(reported.err().matches("(?s).*  stage fidelity: \\d+\\.\\d{3} s \\(2 ORT sessions, 8 runs\\)\\n.*"),
                reported.err());
        List<String> figures = plain.out().lines().filter(l -> l.contains("cosine mean")).toList();
        assertFalse(figures.isEmpty(), plain.out());
        assertEquals(figures, reported.out().lines().filter(l -> l.contains("cosine mean")).toList());
        assertEquals(ModelIO.load(tmp.resolve("reported.onnx")).graph(), ModelIO.load(tmp.resolve("plain.onnx")).graph());
    }

    @Test
    void quantizesAtATargetOpset() {
        Path out = tmp.resolve("cnn-int8-opset21.onnx");
        Run r = cli(MODEL, out.toString(), "--calib", CALIB, INT8_ANYWAY, "--target-opset", "21");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("ORT integer kernels: 4 for 4 quantized layers"), r.out());
        assertEquals(21, ModelIO.load(out).opsetVersion(""));
        assertUserError(cli(MODEL, tmp.resolve("o.onnx").toString(), "--calib", CALIB, "--target-opset", "12"),
                tmp.resolve("o.onnx"), "the target opset must be between 13 and 21, not 12");
    }

    @Test
    void sameInputAndOptionsGiveTheSameBytes() throws IOException {
        Path a = tmp.resolve("a.onnx");
        Path b = tmp.resolve("b.onnx");
        assertEquals(0, cli(MODEL, a.toString(), "--calib", CALIB, INT8_ANYWAY, "--quiet").code());
        assertEquals(0, cli(MODEL, b.toString(), "--calib", CALIB, INT8_ANYWAY, "--quiet").code());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)));
    }

    @Test
    void externalDataAlwaysGivesTheSameModelInTwoFilesThatOrtReads() throws IOException {
        Path whole = tmp.resolve("whole.onnx");
        Path split = tmp.resolve("split.onnx");
        assertEquals(0, cli(MODEL, whole.toString(), "--calib", CALIB, INT8_ANYWAY, "--quiet", "--no-report").code());
        Run r = cli(MODEL, split.toString(), "--calib", CALIB, INT8_ANYWAY, "--quiet", "--no-report", "--external-data", "always",
                "--external-data-threshold", "64");
        assertEquals(0, r.code(), r.err());
        assertFalse(Files.exists(tmp.resolve("whole.onnx.data")), "auto keeps a small model in one file");
        assertTrue(Files.size(tmp.resolve("split.onnx.data")) > 0);
        assertTrue(Files.size(split) < Files.size(whole), Files.size(split) + " vs " + Files.size(whole));
        // Loaded back, the two are the same message; ORT reading the file pair computes the same.
        assertEquals(ModelIO.load(whole).proto(), ModelIO.load(split).proto());
        java.util.Map<String, HostTensor> x = java.util.Map.of("x",
                dev.qwtonnx.testutil.OrtTestSupport.randomFloats(new java.util.Random(5), 1, 3, 16, 16));
        org.junit.jupiter.api.Assertions.assertArrayEquals(
                dev.qwtonnx.testutil.OrtTestSupport.run(whole, x).get("logits").toFloats(),
                dev.qwtonnx.testutil.OrtTestSupport.run(split, x).get("logits").toFloats());
        assertEquals(List.of(), leftovers());
    }

    @Test
    void unknownExternalDataModeIsRefusedBeforeAnyWork() {
        Path out = tmp.resolve("o.onnx");
        assertUserError(cli(MODEL, out.toString(), "--calib", CALIB, "--external-data", "sometimes"), out,
                "--external-data must be auto, always or never");
    }

    private List<Path> leftovers() {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A user error: exit 2, one line naming {@code mentions}, no stack trace, no output file. */
    private void assertUserError(Run r, Path out, String mentions) {
        assertEquals(Main.USER_ERROR, r.code(), r.err());
        String[] lines = r.err().strip().split("\n");
        assertEquals(1, lines.length, r.err());
        assertTrue(lines[0].startsWith("qwt-onnx: "), r.err());
        assertTrue(r.err().contains(mentions), "'" + mentions + "' not in: " + r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        if (out != null) {
            assertFalse(Files.exists(out), "output written despite the error");
        }
        assertEquals(List.of(), leftovers());
    }

    @Test
    void missingModel() {
        Path out = tmp.resolve("o.onnx");
        Path missing = tmp.resolve("nope.onnx");
        assertUserError(cli(missing.toString(), out.toString(), "--calib", CALIB), out, missing.toString());
    }

    @Test
    void notAnOnnxModel() throws IOException {
        Path bad = tmp.resolve("bad.onnx");
        Files.write(bad, new byte[] {(byte) 0xff, 0x13, 0x37, 0x00, 0x42, (byte) 0x99, 0x7f});
        Path out = tmp.resolve("o.onnx");
        assertUserError(cli(bad.toString(), out.toString(), "--calib", CALIB), out, "not an ONNX model");
    }

    @Test
    void emptyFileIsNotAModel() throws IOException {
        Path bad = tmp.resolve("empty.onnx");
        Files.write(bad, new byte[0]);
        Path out = tmp.resolve("o.onnx");
        assertUserError(cli(bad.toString(), out.toString(), "--calib", CALIB), out, "not an ONNX model");
    }

    @Test
    void outputEqualToInputIsRefused() throws IOException {
        Path copy = tmp.resolve("model.onnx");
        Files.copy(Path.of(MODEL), copy);
        byte[] before = Files.readAllBytes(copy);
        assertUserError(cli(copy.toString(), copy.toString(), "--calib", CALIB), null, "refusing to overwrite");
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(copy)));
    }

    @Test
    void missingCalibrationFolder() {
        Path out = tmp.resolve("o.onnx");
        Path dir = tmp.resolve("no-such-dir");
        assertUserError(cli(MODEL, out.toString(), "--calib", dir.toString()), out, dir.toString());
    }

    @Test
    void emptyCalibrationFolder() throws IOException {
        Path out = tmp.resolve("o.onnx");
        Path dir = Files.createDirectory(tmp.resolve("empty"));
        assertUserError(cli(MODEL, out.toString(), "--calib", dir.toString()), out, dir.toString());
    }

    private Path calibWith(String name, HostTensor t) throws IOException {
        Path set = Files.createDirectories(tmp.resolve("calib").resolve("test_data_set_0"));
        Files.write(set.resolve("input_0.pb"), t.toProto(name).toByteArray());
        return tmp.resolve("calib");
    }

    @Test
    void calibrationMissingAnInput() throws IOException {
        Path out = tmp.resolve("o.onnx");
        Path dir = calibWith("not_x", HostTensor.ofFloats(new long[] {1, 3, 16, 16}, new float[768]));
        assertUserError(cli(MODEL, out.toString(), "--calib", dir.toString()), out, "'x'");
    }

    @Test
    void sampleOfTheWrongShape() throws IOException {
        Path out = tmp.resolve("o.onnx");
        Path dir = calibWith("x", HostTensor.ofFloats(new long[] {1, 3, 8, 8}, new float[192]));
        assertUserError(cli(MODEL, out.toString(), "--calib", dir.toString()), out, "input_0.pb");
    }

    @Test
    void sampleOfTheWrongType() throws IOException {
        Path out = tmp.resolve("o.onnx");
        Path dir = calibWith("x", HostTensor.ofLongs(new long[] {1, 3, 16, 16}, new long[768]));
        assertUserError(cli(MODEL, out.toString(), "--calib", dir.toString()), out, "input_0.pb");
    }

    @Test
    void unknownMethod() {
        Path out = tmp.resolve("o.onnx");
        assertUserError(cli(MODEL, out.toString(), "--calib", CALIB, "--method", "magic"), out, "--method");
    }

    /** --cwac-samples reaches the options the output records; a negative count is a user error. */
    @Test
    void cwacSamplesOption() {
        Path out = tmp.resolve("cnn-int8-cwac2.onnx");
        Run r = cli(MODEL, out.toString(), "--calib", CALIB, INT8_ANYWAY, "--cwac-samples", "2");
        assertEquals(0, r.code(), r.err());
        String options = ModelIO.load(out).proto().getMetadataPropsList().stream()
                .filter(e -> e.getKey().equals("qwt.options")).findFirst().orElseThrow().getValue();
        assertTrue(options.contains("samples=2"), options);
        Path bad = tmp.resolve("o.onnx");
        assertUserError(cli(MODEL, bad.toString(), "--calib", CALIB, "--cwac-samples", "-1"), bad, "CWAC samples");
        // -1 is the API's "by bit width"; on the command line that is leaving --stages out.
        assertUserError(cli(MODEL, bad.toString(), "--calib", CALIB, "--stages", "-1"), bad, "--stages must be 0 or more");
    }

    @Test
    void missingOutputFolder() {
        Path out = tmp.resolve("no/such/dir/o.onnx");
        assertUserError(cli(MODEL, out.toString(), "--calib", CALIB), out, "output folder does not exist");
    }
}
