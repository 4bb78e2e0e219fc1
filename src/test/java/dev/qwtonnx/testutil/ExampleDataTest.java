package dev.qwtonnx.testutil;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bundled example in testdata/example is exactly what {@link ExampleData} generates. */
class ExampleDataTest {
    @Test
    void bundledExampleMatchesItsGenerator(@TempDir Path tmp) throws Exception {
        ExampleData.write(tmp);
        List<Path> files;
        try (Stream<Path> s = Files.walk(tmp)) {
            files = s.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path f : files) {
            Path bundled = ExampleData.DIR.resolve(tmp.relativize(f).toString());
            assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(bundled), bundled.toString());
        }
    }
}
