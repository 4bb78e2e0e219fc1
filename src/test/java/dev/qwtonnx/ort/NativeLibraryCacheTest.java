package dev.qwtonnx.ort;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ORT's libraries written once to the cache, reused, rewritten when damaged; a user's own path kept. */
class NativeLibraryCacheTest {
    @TempDir
    Path root;

    /** The test JVM's own setting (testutil.OrtNativeCache), put back after each test. */
    private String before;

    @BeforeEach
    void startWithoutAPath() {
        before = System.clearProperty(NativeLibraryCache.PROPERTY);
    }

    @AfterEach
    void restoreThePath() {
        if (before == null) {
            System.clearProperty(NativeLibraryCache.PROPERTY);
        } else {
            System.setProperty(NativeLibraryCache.PROPERTY, before);
        }
    }

    private static List<Path> libraries(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    @Test
    void writesTheLibrariesOnceAndPointsOrtAtThem() throws Exception {
        assertNull(System.getProperty(NativeLibraryCache.PROPERTY), "no native path set before");
        Path dir = NativeLibraryCache.install(root);
        assertNotNull(dir, "ORT's libraries are in its jar on this platform: " + NativeLibraryCache.platform());
        assertEquals(dir.toString(), System.getProperty(NativeLibraryCache.PROPERTY));
        assertTrue(dir.getFileName().toString().startsWith("ort-" + NativeLibraryCache.platform() + "-"));
        List<Path> libs = libraries(dir);
        assertEquals(List.of(System.mapLibraryName("onnxruntime"), System.mapLibraryName("onnxruntime4j_jni")).stream()
                .sorted().toList(), libs.stream().map(p -> p.getFileName().toString()).toList());
        Path ort = dir.resolve(System.mapLibraryName("onnxruntime"));
        assertTrue(Files.size(ort) > 1_000_000, "the whole library, not a stub");

        // A second process finds them and writes nothing.
        FileTime written = FileTime.fromMillis(1_000_000_000L);
        Files.setLastModifiedTime(ort, written);
        System.clearProperty(NativeLibraryCache.PROPERTY);
        assertEquals(dir, NativeLibraryCache.install(root));
        assertEquals(written, Files.getLastModifiedTime(ort));

        // A damaged copy (a short file) is written again, whole.
        long size = Files.size(ort);
        Files.write(ort, new byte[10]);
        System.clearProperty(NativeLibraryCache.PROPERTY);
        assertEquals(dir, NativeLibraryCache.install(root));
        assertEquals(size, Files.size(ort));
        assertEquals(2, libraries(dir).size(), "no temporary file is left");
    }

    @Test
    void aPathTheUserSetIsKept() {
        System.setProperty(NativeLibraryCache.PROPERTY, "/opt/my-ort");
        assertNull(NativeLibraryCache.install(root));
        assertEquals("/opt/my-ort", System.getProperty(NativeLibraryCache.PROPERTY));
        assertEquals(0, root.toFile().list().length, "nothing written");
    }

    @Test
    void anUnwritableCacheLeavesOrtToItsOwnWay() throws Exception {
        Path file = Files.writeString(root.resolve("not-a-directory"), "x");
        assertNull(NativeLibraryCache.install(file.resolve("qwt-onnx")));
        assertNull(System.getProperty(NativeLibraryCache.PROPERTY));
    }
}
