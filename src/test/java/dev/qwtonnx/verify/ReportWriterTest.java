package dev.qwtonnx.verify;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportWriterTest {
    private static Report report;

    @BeforeAll
    static void makeReport() {
        Model f = VerifierTest.cnnWithLargeBias();
        CalibrationSource samples = TestModels.gaussian("x", 5, 4, new long[] {1, 3, 16, 16});
        QuantizeRun.Result r = QwtOnnx.quantize(f, samples, Int8Anyway.options(), Progress.NONE, null);
        Model broken = VerifierTest.withBiasScale(r.model(), "conv_big_bias", 1.02f);
        report = Verifier.verify(new Verifier.Subject(r.prepared(), null), new Verifier.Subject(broken, null), samples,
                "gaussian <test>", new Verifier.Options(2), new Verifier.QuantizeRun(r.uncompensated(), r.compensation(),
                        "cwac", "gaussian", samples.size(), null, null,
                        List.of(new Report.Decision("plan-layers", "Conv node 'x'", "kept in float as asked")),
                        new Report.Accuracy(List.of("SQNR of 'y' >= 30.00 dB"), true, "SQNR of 'y' 31.00 dB",
                                "4 held-out samples", List.of(new Report.Returned("conv_1", "SQNR of 'y' 20.00 dB",
                                        "SQNR of 'y' 31.00 dB")), List.of("warning: an example")), null, null, null, null),
                Progress.NONE).withTarget(dev.qwtonnx.run.VerifyRun.targetCheck(broken,
                        dev.qwtonnx.target.Target.named("xnnpack")));
    }

    /** The key paths of a JSON tree: objects as a.b, array elements as a[].b. */
    static TreeSet<String> keyPaths(JsonNode n, String prefix, TreeSet<String> out) {
        if (n.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                String p = prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey();
                out.add(p);
                keyPaths(e.getValue(), p, out);
            }
        } else if (n.isArray()) {
            for (JsonNode c : n) {
                keyPaths(c, prefix + "[]", out);
            }
        }
        return out;
    }

    /** The key paths docs/report.md documents: the first word of each line of its report-schema block. */
    static TreeSet<String> documentedKeyPaths() throws IOException {
        String doc = Files.readString(Path.of("docs/report.md"));
        Matcher m = Pattern.compile("<!-- report-schema -->\\s*```text\\n(.*?)```", Pattern.DOTALL).matcher(doc);
        assertTrue(m.find(), "docs/report.md has no report-schema block");
        TreeSet<String> out = new TreeSet<>();
        for (String line : m.group(1).split("\n")) {
            if (!line.isBlank()) {
                out.add(line.trim().split("\\s+")[0]);
            }
        }
        return out;
    }

    @Test
    void jsonKeysAreExactlyTheDocumentedSchema() throws IOException {
        JsonNode json = new ObjectMapper().readTree(ReportWriter.json(report));
        assertEquals(Report.SCHEMA_VERSION, json.get("schemaVersion").asInt());
        // Every list in this report has at least one element, so every documented key is reachable.
        assertEquals(documentedKeyPaths(), keyPaths(json, "", new TreeSet<>()));
    }

    /** The sample the launcher's archiving run renders reaches every chart and section a real report does. */
    @Test
    void theSampleReportFillsEverySection() throws IOException {
        Report sample = ReportSample.report();
        String html = ReportWriter.html(sample);
        assertEquals(3, count(html, "<svg"), "per-layer SQNR, latency and a_c charts");
        assertTrue(html.contains("<b>warning: an example</b>"));
        TreeSet<String> keys = keyPaths(new ObjectMapper().readTree(ReportWriter.json(sample)), "", new TreeSet<>());
        TreeSet<String> all = keyPaths(new ObjectMapper().readTree(ReportWriter.json(report)), "", new TreeSet<>());
        all.removeIf(k -> k.startsWith("target"));
        all.removeAll(keys);
        assertTrue(all.isEmpty(), "keys the sample leaves out: " + all);
    }

    @Test
    void htmlIsOnePageWithItsChartsAndNothingFetched() {
        String html = ReportWriter.html(report);
        assertTrue(html.startsWith("<!DOCTYPE html>") || html.contains("<!DOCTYPE html>"));
        assertFalse(Pattern.compile("(src|href)\\s*=\\s*\"(https?:)?//").matcher(html).find(), "fetches a resource");
        assertFalse(html.contains("<script"), "no scripts");
        assertEquals(3, count(html, "<svg"), "per-layer SQNR, latency and a_c charts");
        // One SQNR row per layer, the broken one in the unfused colour, with its reason in the tables.
        assertEquals(report.layers().layers().size(), count(html, "<g><title>"));
        assertTrue(html.contains("class=\"unfused\" x="), "the unfused layer's bar");
        assertTrue(html.contains("bias scale mismatch"));
        assertTrue(html.contains("gaussian &lt;test&gt;"), "text is escaped");
        assertTrue(html.contains("<td class=\"l\">xnnpack.u8s8</td>"), "the target's violations are listed");
        assertTrue(html.contains("<b>warning: an example</b>"), "the fidelity warning");
        assertTrue(html.contains("Accuracy target SQNR of &#39;y&#39; &gt;= 30.00 dB: met on 4 held-out samples"),
                "the accuracy target");
        assertTrue(html.contains("<li>conv_1: SQNR of &#39;y&#39; 20.00 dB → SQNR of &#39;y&#39; 31.00 dB</li>"),
                "the layer returned to float");
        int bins = report.compensation().gainHistogram().bins().size();
        assertEquals(bins, count(html, "<rect class=\"hist\""));
    }

    @Test
    void rendersAReportWhereOptionalFiguresAreNull() {
        // An MLP (rank-3 output: no top-k), verified alone (no compensation) without timing.
        Model f = TestModels.mlp(2);
        CalibrationSource samples = TestModels.gaussian("x", 1, 3, new long[] {1, 5, 32});
        QuantizeRun.Result q = QwtOnnx.quantize(f, samples, Int8Anyway.options(), Progress.NONE, null);
        Report r = Verifier.verify(new Verifier.Subject(q.prepared(), null), new Verifier.Subject(q.model(), null),
                samples, "gaussian", new Verifier.Options(0), null, Progress.NONE);
        assertEquals(null, r.outputs().get(0).top1Agreement());
        assertEquals(null, r.compensation());
        assertEquals(null, r.cost().floatLatency());
        assertEquals(null, r.cost().speedup());
        assertFalse(ReportWriter.json(r).contains("NaN"), "no figure is NaN");
        String html = ReportWriter.html(r);
        assertEquals(1, count(html, "<svg"), "only the per-layer chart");
        assertEquals(3, count(html, "<g><title>"));
    }

    @Test
    void writesAtomicallyInTheFormatTheExtensionNames(@TempDir Path tmp) throws IOException {
        Path json = tmp.resolve("r.json");
        Path html = tmp.resolve("r.html");
        ReportWriter.write(report, json);
        ReportWriter.write(report, html);
        assertEquals(ReportWriter.json(report), Files.readString(json));
        assertTrue(Files.readString(html).contains("<svg"));
        List<String> names = new ArrayList<>();
        try (var s = Files.list(tmp)) {
            s.forEach(p -> names.add(p.getFileName().toString()));
        }
        assertEquals(new TreeSet<>(List.of("r.json", "r.html")), new TreeSet<>(names));
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.qwtonnx.QwtException.class,
                () -> ReportWriter.write(report, tmp.resolve("r.txt")));
        assertTrue(e.getMessage().contains("r.txt"));
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }
}
