package dev.qwtonnx.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.run.StageRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java API example, compiled and run here, and shown in the README as it stands here. */
class ApiExampleTest {
    private static final Path SOURCE = Path.of("src/test/java/dev/qwtonnx/api/ApiExampleTest.java");

    @Test
    void theReadmeExampleQuantizesTheBundledModel(@TempDir Path dir) throws Exception {
        Path in = Path.of("testdata/example/cnn.onnx");
        Path out = dir.resolve("cnn-int8.onnx");
        List<String> log = new ArrayList<>();
        QuantizeRun.Result result;
        // README example begins
        Model floatModel = ModelIO.load(in);
        try (CalibrationSource calibration = CalibrationSources.open(Path.of("testdata/example/calib"),
                InputSpecs.of(floatModel.graph()))) {
            result = QwtOnnx.quantize(floatModel, calibration)  // model and calibration data
                    .options(QuantizeRun.Options.defaults()       // optional; this example is too small
                            .withQuant(QuantOptions.defaults().withKeepSlowInt8(true)))  // for int8 to pay
                    .log(log::add)                                 // optional: stages, times, decisions
                    .run();
            ModelIO.save(result.model(), out, in);
        }
        // README example ends
        Model written = ModelIO.load(out);
        assertTrue(written.graph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("QuantizeLinear")));
        assertEquals(QuantizeRun.stages(QuantizeRun.Options.defaults(), null).stream().map(s -> s.name()).toList(),
                result.timings().stream().map(StageRunner.Timing::stage).toList());
        assertTrue(log.get(0).startsWith("quantize stages: prepare -> plan-layers"), log.get(0));
    }

    @Test
    void theReadmeShowsTheExampleThisTestRuns() throws Exception {
        List<String> src = Files.readAllLines(SOURCE);
        List<String> example = trimmed(src.subList(src.indexOf("        // README example begins") + 1,
                src.indexOf("        // README example ends")));
        String readme = Files.readString(Path.of("README.md"));
        int api = readme.indexOf("## Java API");
        assertTrue(api >= 0, "README.md has a '## Java API' section");
        int start = readme.indexOf("```java\n", api) + "```java\n".length();
        List<String> shown = trimmed(List.of(readme.substring(start, readme.indexOf("```", start)).split("\n")));
        assertEquals(example, shown, "README's Java API example and this test's differ");
    }

    private static List<String> trimmed(List<String> lines) {
        return lines.stream().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }
}
