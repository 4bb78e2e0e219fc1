package dev.qwtonnx.ort;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CpuFeaturesTest {
    @Test
    void vnniIsReadFromCpuFlags(@TempDir Path dir) throws Exception {
        Path old = Files.writeString(dir.resolve("old"), "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n");
        Path vnni = Files.writeString(dir.resolve("new"), "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n");
        Path hybrid = Files.writeString(dir.resolve("hybrid"), "flags\t\t: avx2 avx_vnni\n");
        assertTrue(CpuFeatures.fromCpuinfo("amd64", old).lacksInt8DotProduct());
        assertFalse(CpuFeatures.fromCpuinfo("amd64", vnni).lacksInt8DotProduct());
        assertFalse(CpuFeatures.fromCpuinfo("amd64", hybrid).lacksInt8DotProduct());
        // Not x86, or nothing known: no claim.
        assertFalse(CpuFeatures.fromCpuinfo("aarch64", old).lacksInt8DotProduct());
        assertFalse(CpuFeatures.fromCpuinfo("amd64", dir.resolve("missing")).lacksInt8DotProduct());
    }
}
