package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static dev.qwtonnx.calib.data.DataTestSupport.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpzTest {
    @TempDir
    Path tmp;

    @Test
    void roundTripsSeveralDtypesInOrder() throws IOException {
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        arrays.put("pixel_values", HostTensor.ofFloats(new long[] {1, 2, 2}, new float[] {0.5f, -1, 3, 4}));
        arrays.put("input_ids", HostTensor.ofLongs(new long[] {1, 3}, new long[] {101, 7592, 102}));
        arrays.put("lengths", HostTensor.ofInts(new long[] {1}, new int[] {3}));
        arrays.put("mask", new HostTensor(DataType.BOOL, new long[] {3}, ByteBuffer.wrap(new byte[] {1, 1, 0})));
        arrays.put("a.b:0", new HostTensor(DataType.UINT8, new long[] {}, ByteBuffer.wrap(new byte[] {9})));
        Path f = tmp.resolve("sample.npz");
        Npz.write(f, arrays);
        Map<String, HostTensor> back = Npz.read(f);
        assertEquals(List.copyOf(arrays.keySet()), List.copyOf(back.keySet()));
        arrays.forEach((k, t) -> {
            assertEquals(t.type(), back.get(k).type(), k);
            assertArrayEquals(t.shape(), back.get(k).shape(), k);
            assertEquals(t.bytes(), back.get(k).bytes(), k);
        });
        byte[] first = Files.readAllBytes(f);
        Npz.write(f, arrays);
        assertArrayEquals(first, Files.readAllBytes(f), "the same arrays give the same bytes");
    }

    @Test
    void readsStoredAndDeflatedArchivesFromNumpy() {
        for (String f : List.of("stored.npz", "deflated.npz")) {
            Map<String, HostTensor> a = Npz.read(resource("npz/" + f));
            assertEquals(List.of("x", "ids"), List.copyOf(a.keySet()), f);
            assertArrayEquals(new float[] {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f}, a.get("x").toFloats(), f);
            assertEquals(DataType.INT64, a.get("ids").type(), f);
            assertArrayEquals(new long[] {1, 4}, a.get("ids").shape(), f);
            assertArrayEquals(new long[] {0, 1, 2, 3}, a.get("ids").toLongs(), f);
        }
        assertEquals(List.of("arr_0"), List.copyOf(Npz.read(resource("npz/positional.npz")).keySet()));
    }

    @Test
    void corruptArchivesAreOneLineErrorsNamingTheFile() throws IOException {
        Path junk = Files.write(tmp.resolve("junk.npz"), new byte[] {1, 2, 3, 4, 5});
        assertOneLine(assertThrows(QwtException.class, () -> Npz.read(junk)), "junk.npz: ", "not a .npz archive");

        assertOneLine(assertThrows(QwtException.class, () -> Npz.read(tmp.resolve("absent.npz"))), "absent.npz: ");

        // A stored entry whose bytes are not a .npy array.
        Path badEntry = tmp.resolve("bad_entry.npz");
        try (OutputStream os = Files.newOutputStream(badEntry); ZipOutputStream zip = new ZipOutputStream(os)) {
            zip.putNextEntry(new ZipEntry("x.npy"));
            zip.write("not numpy".getBytes());
            zip.closeEntry();
        }
        assertOneLine(assertThrows(QwtException.class, () -> Npz.read(badEntry)), "bad_entry.npz[x.npy]: ", "magic");

        // A valid .npy body, stored, then one data byte flipped so the checksum no longer matches.
        Path good = tmp.resolve("good.npz");
        Npz.write(good, Map.of("x", HostTensor.ofFloats(new long[] {4}, new float[] {1, 2, 3, 4})));
        Path badCrc = tmp.resolve("bad_crc.npz");
        byte[] body;
        try (var in = new java.util.zip.ZipFile(good.toFile())) {
            body = in.getInputStream(in.getEntry("x.npy")).readAllBytes();
        }
        try (OutputStream os = Files.newOutputStream(badCrc); ZipOutputStream zip = new ZipOutputStream(os)) {
            ZipEntry e = new ZipEntry("x.npy");
            e.setMethod(ZipEntry.STORED);
            e.setSize(body.length);
            CRC32 crc = new CRC32();
            crc.update(body);
            e.setCrc(crc.getValue());
            zip.putNextEntry(e);
            zip.write(body);
            zip.closeEntry();
        }
        byte[] bytes = Files.readAllBytes(badCrc);
        int at = indexOf(bytes, body) + body.length - 1; // flip the last data byte
        bytes[at] ^= 0x55;
        Files.write(badCrc, bytes);
        assertOneLine(assertThrows(QwtException.class, () -> Npz.read(badCrc)), "bad_crc.npz", "x.npy");
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
