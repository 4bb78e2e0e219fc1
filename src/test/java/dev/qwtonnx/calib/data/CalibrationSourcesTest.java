package dev.qwtonnx.calib.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationSourcesTest {
    @TempDir
    Path tmp;

    static final List<InputSpec> BERT = List.of(new InputSpec("input_ids", DataType.INT64, new long[] {1, -1}),
            new InputSpec("attention_mask", DataType.INT64, new long[] {1, -1}));

    static HostTensor ids(int len, long start) {
        long[] v = new long[len];
        for (int i = 0; i < len; i++) {
            v[i] = start + i;
        }
        return HostTensor.ofLongs(new long[] {1, len}, v);
    }

    @Test
    void npyRoundTripsEveryDtype() throws IOException {
        List<HostTensor> tensors = List.of(HostTensor.ofFloats(new long[] {2, 3}, new float[] {1, -2, 3.5f, 0, 7, -8}),
                HostTensor.ofLongs(new long[] {4}, new long[] {1, -1, Long.MAX_VALUE, 0}),
                HostTensor.ofInts(new long[] {1, 1, 2}, new int[] {5, -6}),
                new HostTensor(DataType.UINT8, new long[] {3}, ByteBuffer.wrap(new byte[] {0, (byte) 200, 7})),
                new HostTensor(DataType.INT8, new long[] {}, ByteBuffer.wrap(new byte[] {-3})));
        for (HostTensor t : tensors) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            Npy.write(out, t);
            assertEquals(0, (out.size() - t.numel() * t.type().bytes) % 64, "header is 64-byte aligned");
            HostTensor back = Npy.read(new ByteArrayInputStream(out.toByteArray()), "mem");
            assertEquals(t.type(), back.type());
            assertArrayEquals(t.shape(), back.shape());
            assertArrayEquals(t.toFloats(), back.toFloats());
        }
    }

    /** A version-2 header written by hand, as NumPy writes it for long headers. */
    @Test
    void readsAHandWrittenVersion2Header() {
        String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        ByteBuffer b = ByteBuffer.allocate(12 + header.length() + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0}).putInt(header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1)).putFloat(1.25f).putFloat(-3f);
        HostTensor t = Npy.read(new ByteArrayInputStream(b.array()), "hand.npy");
        assertArrayEquals(new float[] {1.25f, -3f}, t.toFloats());
    }

    @Test
    void badNpyFilesGiveOneLineErrors() {
        String fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }";
        byte[] f = ("\u0093NUMPY\u0001\u0000" + (char) fortran.length() + "\u0000" + fortran + "\u0000\u0000\u0000\u0000")
                .getBytes(StandardCharsets.ISO_8859_1);
        QwtException e = assertThrows(QwtException.class, () -> Npy.read(new ByteArrayInputStream(f), "f.npy"));
        assertTrue(e.getMessage().startsWith("f.npy: Fortran-order"), e.getMessage());
        e = assertThrows(QwtException.class, () -> Npy.read(new ByteArrayInputStream(new byte[] {1, 2, 3}), "junk.npy"));
        assertTrue(e.getMessage().contains("junk.npy"), e.getMessage());
        byte[] truncated = java.util.Arrays.copyOf(f, 20);
        e = assertThrows(QwtException.class, () -> Npy.read(new ByteArrayInputStream(truncated), "t.npy"));
        assertTrue(e.getMessage().contains("t.npy"), e.getMessage());
    }

    @Test
    void npzFolderWithVariableLengthsAndExtraArrays() {
        for (int i = 0; i < 3; i++) {
            Map<String, HostTensor> arrays = new LinkedHashMap<>();
            arrays.put("input_ids", ids(5 + i * 4, 100));
            arrays.put("attention_mask", ids(5 + i * 4, 1));
            arrays.put("labels", ids(1, 0)); // not a model input: ignored
            Npz.write(tmp.resolve("s" + i + ".npz"), arrays);
        }
        CalibrationSource src = CalibrationSources.open(tmp, BERT);
        assertEquals(3, src.size());
        List<Long> lengths = new ArrayList<>();
        for (Sample s : src) {
            assertEquals(Set.of("input_ids", "attention_mask"), s.inputs().keySet());
            lengths.add(s.inputs().get("input_ids").shape()[1]);
        }
        assertEquals(List.of(5L, 9L, 13L), lengths);
    }

    @Test
    void testDataSetsByNameAndByPosition() throws IOException {
        Path a = Files.createDirectories(tmp.resolve("test_data_set_0"));
        Files.write(a.resolve("input_0.pb"), ids(4, 7).toProto("").toByteArray());
        Files.write(a.resolve("input_1.pb"), ids(4, 1).toProto("").toByteArray());
        Path b = Files.createDirectories(tmp.resolve("test_data_set_1"));
        Files.write(b.resolve("input_0.pb"), ids(6, 1).toProto("attention_mask").toByteArray());
        Files.write(b.resolve("input_1.pb"), ids(6, 9).toProto("input_ids").toByteArray());
        List<Sample> samples = new ArrayList<>();
        CalibrationSources.open(tmp, BERT).forEach(samples::add);
        assertEquals(7, samples.get(0).inputs().get("input_ids").toLongs()[0]);
        assertEquals(9, samples.get(1).inputs().get("input_ids").toLongs()[0]);
        assertEquals(1, samples.get(1).inputs().get("attention_mask").toLongs()[0]);
    }

    @Test
    void npyFolderIsOneSample() throws IOException {
        for (String n : List.of("input_ids", "attention_mask")) {
            try (var out = Files.newOutputStream(tmp.resolve(n + ".npy"))) {
                Npy.write(out, ids(3, 2));
            }
        }
        assertEquals(1, CalibrationSources.open(tmp, BERT).size());
    }

    private QwtException openError(Map<String, HostTensor> arrays, List<InputSpec> specs) {
        Npz.write(tmp.resolve("bad.npz"), arrays);
        return assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, specs));
    }

    @Test
    void samplesThatDoNotFitTheModelAreNamed() {
        List<InputSpec> image = List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 3, 4, 4}));
        QwtException e = openError(Map.of("y", HostTensor.ofFloats(new long[] {1, 3, 4, 4}, new float[48])), image);
        assertTrue(e.getMessage().contains("bad.npz") && e.getMessage().contains("'x'"), e.getMessage());
        e = openError(Map.of("x", HostTensor.ofLongs(new long[] {1, 3, 4, 4}, new long[48])), image);
        assertTrue(e.getMessage().contains("is INT64 but the model takes FLOAT"), e.getMessage());
        e = openError(Map.of("x", HostTensor.ofFloats(new long[] {3, 4, 4}, new float[48])), image);
        assertTrue(e.getMessage().contains("has shape [3, 4, 4]"), e.getMessage());
        e = openError(Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 4, 5}, new float[60])), image);
        assertTrue(e.getMessage().contains("has shape [1, 3, 4, 5]"), e.getMessage());
        float[] nan = new float[48];
        nan[7] = Float.NaN;
        e = openError(Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 4, 4}, nan)), image);
        assertTrue(e.getMessage().contains("NaN"), e.getMessage());
    }

    @Test
    void emptyOrMissingFolders() throws IOException {
        QwtException e = assertThrows(QwtException.class, () -> CalibrationSources.open(tmp.resolve("none"), BERT));
        assertTrue(e.getMessage().contains(tmp.resolve("none").toString()));
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        e = assertThrows(QwtException.class, () -> CalibrationSources.open(empty, BERT));
        assertTrue(e.getMessage().startsWith("no calibration samples in " + empty), e.getMessage());
    }

    @Test
    void corruptNpzIsAClearError() throws IOException {
        Files.write(tmp.resolve("broken.npz"), new byte[] {1, 2, 3, 4, 5});
        QwtException e = assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT));
        assertTrue(e.getMessage().contains("broken.npz"), e.getMessage());
    }

    @Test
    void splitIsSeededDisjointAndComplete() {
        List<Sample> all = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            all.add(new Sample("s" + i, Map.of("input_ids", ids(2, i))));
        }
        CalibrationSource src = CalibrationSources.ofList(all);
        List<CalibrationSource> a = CalibrationSources.split(src, 0.25, 42);
        List<CalibrationSource> b = CalibrationSources.split(src, 0.25, 42);
        List<CalibrationSource> c = CalibrationSources.split(src, 0.25, 43);
        assertEquals(15, a.get(0).size());
        assertEquals(5, a.get(1).size());
        Set<String> calib = ids(a.get(0));
        Set<String> held = ids(a.get(1));
        assertEquals(15, calib.size());
        assertTrue(calib.stream().noneMatch(held::contains));
        assertEquals(held, ids(b.get(1)));
        assertTrue(!held.equals(ids(c.get(1))), "another seed, another split");
    }

    private static Set<String> ids(CalibrationSource s) {
        Set<String> out = new HashSet<>();
        s.forEach(x -> out.add(x.id()));
        return out;
    }
}
