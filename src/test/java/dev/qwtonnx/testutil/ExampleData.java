package dev.qwtonnx.testutil;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the example bundled in testdata/example: the small CNN of {@link TestModels#smallCnn} and
 * 20 calibration samples as ONNX test-data sets. Run once by hand
 * ({@code mvn -q test-compile exec:java} is not needed: ExampleDataTest checks the files match).
 */
public final class ExampleData {
    public static final Path DIR = Path.of("testdata/example");
    public static final int SAMPLES = 20;

    private ExampleData() {
    }

    public static Model model() {
        return TestModels.smallCnn(7);
    }

    public static void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        ModelIO.save(model(), dir.resolve("cnn.onnx"), null);
        int i = 0;
        for (Sample s : TestModels.gaussian("x", 11, SAMPLES, new long[] {1, 3, 16, 16})) {
            Path set = dir.resolve("calib").resolve(String.format("test_data_set_%02d", i++));
            Files.createDirectories(set);
            Files.write(set.resolve("input_0.pb"), s.inputs().get("x").toProto("x").toByteArray());
        }
    }

    public static void main(String[] args) throws IOException {
        write(args.length > 0 ? Path.of(args[0]) : DIR);
    }
}
