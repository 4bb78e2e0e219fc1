package dev.qwtonnx.calib.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What we write, NumPy reads. Skipped (not passed) on machines without python3 and NumPy. */
class NumpyInteropTest {
    @TempDir
    Path tmp;

    private static String python(Path script) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder("python3", script.toString()).redirectErrorStream(true).start();
        } catch (IOException e) {
            assumeTrue(false, "python3 is not installed");
            throw e;
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("python3 timed out");
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assumeTrue(!out.contains("No module named 'numpy'"), "NumPy is not installed");
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void numpyReadsOurNpyAndNpz() throws IOException, InterruptedException {
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        arrays.put("f", HostTensor.ofFloats(new long[] {2, 2}, new float[] {1.5f, -2, 0, 3}));
        arrays.put("i", HostTensor.ofLongs(new long[] {3}, new long[] {-1, 0, Long.MAX_VALUE}));
        arrays.put("b", new HostTensor(DataType.BOOL, new long[] {}, ByteBuffer.wrap(new byte[] {1})));
        arrays.put("h", new HostTensor(DataType.FLOAT16, new long[] {1}, ByteBuffer.wrap(new byte[] {0, (byte) 0x3c})));
        Npz.write(tmp.resolve("a.npz"), arrays);
        try (OutputStream out = Files.newOutputStream(tmp.resolve("u.npy"))) {
            Npy.write(out, new HostTensor(DataType.UINT8, new long[] {1, 0, 2}, ByteBuffer.allocate(0)));
        }
        Path script = Files.writeString(tmp.resolve("check.py"), String.join("\n",
                "import numpy as np",
                "z = np.load(r'" + tmp.resolve("a.npz") + "')",
                "print(list(z.keys()))",
                "for k in z.keys(): print(k, z[k].dtype, z[k].shape, z[k].tolist())",
                "u = np.load(r'" + tmp.resolve("u.npy") + "')",
                "print('u', u.dtype, u.shape)", ""));
        String out = python(script);
        assertEquals(String.join("\n",
                "['f', 'i', 'b', 'h']",
                "f float32 (2, 2) [[1.5, -2.0], [0.0, 3.0]]",
                "i int64 (3,) [-1, 0, 9223372036854775807]",
                "b bool () True",
                "h float16 (1,) [1.0]",
                "u uint8 (1, 0, 2)"), out);
    }
}
