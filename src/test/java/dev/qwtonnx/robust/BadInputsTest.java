package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The corpus in testdata/bad is exactly what {@link BadInputs} generates, file for file. */
class BadInputsTest {
    @Test
    void corpusMatchesItsGenerator(@TempDir Path tmp) throws Exception {
        BadInputs.write(tmp);
        assertEquals(files(tmp), files(BadInputs.DIR));
        for (Path f : files(tmp)) {
            assertArrayEquals(Files.readAllBytes(tmp.resolve(f)), Files.readAllBytes(BadInputs.DIR.resolve(f)),
                    f.toString());
        }
    }

    private static List<Path> files(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).map(dir::relativize).sorted().toList();
        }
    }
}
