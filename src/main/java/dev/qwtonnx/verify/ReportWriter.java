package dev.qwtonnx.verify;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.AtomicWrite;
import freemarker.template.Configuration;
import freemarker.template.Template;
import freemarker.template.TemplateException;
import freemarker.template.TemplateExceptionHandler;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes a {@link Report} as JSON (Jackson, keys in declaration order) or as one self-contained HTML
 * page (FreeMarker template {@code report.ftlh}, inline CSS and SVG, nothing fetched from a network),
 * chosen by the file extension. Files are written atomically.
 */
public final class ReportWriter {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Configuration TEMPLATES = templates();

    private ReportWriter() {
    }

    /** The format a report path asks for. */
    public enum Format {
        JSON, HTML;

        public static Format of(Path p) {
            String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
            if (n.endsWith(".json")) {
                return JSON;
            }
            if (n.endsWith(".html") || n.endsWith(".htm")) {
                return HTML;
            }
            throw new QwtException("report path must end in .json or .html: " + p);
        }
    }

    /**
     * Loads what writing a report needs — FreeMarker and Jackson, the parsed template, the serializers
     * of the report's records — so that a run can do it on a spare core while it quantizes: in a
     * cold JVM it takes 0.3 to 0.5 s, the largest part of a small model's report stage. Best effort:
     * whatever fails here fails again, with its message, when the report is written.
     */
    public static void warmUp() {
        try {
            TEMPLATES.getTemplate("report.ftlh");
            JSON.writeValueAsString(new Report(Report.SCHEMA_VERSION, "", null, null, null, null, List.of(), null, null,
                    null, null, List.of(), null, null));
        } catch (IOException | RuntimeException e) {
            // See above: the report's own writing reports it.
        }
    }

    public static String json(Report r) {
        try {
            return JSON.writeValueAsString(r) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise the report", e);
        }
    }

    public static String html(Report r) {
        try {
            Template t = TEMPLATES.getTemplate("report.ftlh");
            StringWriter w = new StringWriter();
            t.process(Map.of("r", r, "charts", ReportCharts.of(r), "json", json(r)), w);
            return w.toString();
        } catch (IOException | TemplateException e) {
            throw new IllegalStateException("cannot render the report template", e);
        }
    }

    /** Writes the report in the format its extension names. */
    public static void write(Report r, Path path) {
        String text = Format.of(path) == Format.JSON ? json(r) : html(r);
        writeAtomically(path, text);
    }

    private static void writeAtomically(Path out, String text) {
        AtomicWrite.write(out, text.getBytes(StandardCharsets.UTF_8), "report");
    }

    private static Configuration templates() {
        Configuration c = new Configuration(Configuration.VERSION_2_3_35);
        c.setClassForTemplateLoading(ReportWriter.class, "");
        c.setDefaultEncoding("UTF-8");
        c.setLocale(Locale.ROOT);
        c.setNumberFormat("0.####");
        c.setTemplateExceptionHandler(TemplateExceptionHandler.RETHROW_HANDLER);
        c.setLogTemplateExceptions(false);
        c.setFallbackOnNullLoopVariable(false);
        return c;
    }
}
