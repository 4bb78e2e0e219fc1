package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static dev.qwtonnx.calib.data.DataTestSupport.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NpyTest {
    private static final float[] BASE = {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f};

    static HostTensor raw(DataType type, long[] shape, byte... bytes) {
        return new HostTensor(type, shape, ByteBuffer.wrap(bytes));
    }

    static byte[] toBytes(HostTensor t) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Npy.write(out, t);
        return out.toByteArray();
    }

    static byte[] bytesOf(HostTensor t) {
        ByteBuffer b = t.bytes();
        byte[] a = new byte[b.remaining()];
        b.get(a);
        return a;
    }

    /** A .npy file with a header written by hand: magic, version, header length, header text, data. */
    static byte[] handMade(int major, String header, byte[] data) {
        byte[] h = header.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(12 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        if (major == 1) {
            b.putShort((short) h.length);
        } else {
            b.putInt(h.length);
        }
        b.put(h).put(data);
        return Arrays.copyOf(b.array(), b.position());
    }

    static byte[] floatsLE(float... v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    static HostTensor read(byte[] bytes, String origin) {
        return Npy.read(new ByteArrayInputStream(bytes), origin);
    }

    @Test
    void roundTripsEveryDtypeBitForBit() {
        List<HostTensor> tensors = List.of(
                HostTensor.ofFloats(new long[] {2, 3}, new float[] {1, -2, 3.5f, 0, Float.MIN_VALUE, -8e30f}),
                raw(DataType.DOUBLE, new long[] {1}, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                        .putDouble(Math.PI).array()),
                raw(DataType.FLOAT16, new long[] {2}, (byte) 0x00, (byte) 0x3c, (byte) 0x00, (byte) 0xc0), // 1, -2
                HostTensor.ofLongs(new long[] {4}, new long[] {1, -1, Long.MAX_VALUE, Long.MIN_VALUE}),
                HostTensor.ofInts(new long[] {1, 1, 2}, new int[] {5, -6}),
                raw(DataType.INT16, new long[] {2}, (byte) 0xff, (byte) 0x7f, (byte) 0x00, (byte) 0x80),
                raw(DataType.UINT16, new long[] {1}, (byte) 0xff, (byte) 0xff),
                raw(DataType.INT8, new long[] {}, (byte) -3),
                raw(DataType.UINT8, new long[] {3}, (byte) 0, (byte) 200, (byte) 7),
                raw(DataType.BOOL, new long[] {2, 1}, (byte) 1, (byte) 0),
                raw(DataType.UINT32, new long[] {1}, (byte) 1, (byte) 2, (byte) 3, (byte) 4),
                raw(DataType.UINT64, new long[] {1}, new byte[8]),
                HostTensor.ofFloats(new long[] {0, 3}, new float[0]));
        for (HostTensor t : tensors) {
            byte[] file = toBytes(t);
            assertEquals(0, (file.length - t.numel() * t.type().bytes) % 64, "header is 64-byte aligned for " + t);
            HostTensor back = read(file, "mem.npy");
            assertEquals(t.type(), back.type());
            assertArrayEquals(t.shape(), back.shape());
            assertArrayEquals(bytesOf(t), bytesOf(back), t.toString());
        }
    }

    @Test
    void writesTheHeaderNumpyWrites() {
        byte[] file = toBytes(HostTensor.ofFloats(new long[] {2, 3}, BASE));
        String header = new String(file, 10, file.length - 10 - 24, StandardCharsets.ISO_8859_1);
        assertEquals("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", header.strip());
        assertEquals(1, file[6]);
        assertEquals('\n', header.charAt(header.length() - 1));
        byte[] vector = toBytes(HostTensor.ofFloats(new long[] {2}, new float[2]));
        assertEquals(true, new String(vector, StandardCharsets.ISO_8859_1).contains("'shape': (2,), }"));
        byte[] scalar = toBytes(HostTensor.ofFloats(new long[] {}, new float[1]));
        assertEquals(true, new String(scalar, StandardCharsets.ISO_8859_1).contains("'shape': (), }"));
    }

    @Test
    void readsHandWrittenHeadersOfEachVersion() {
        for (int major : new int[] {1, 2, 3}) {
            HostTensor t = read(handMade(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n",
                    floatsLE(1.25f, -3f)), "hand.npy");
            assertArrayEquals(new long[] {2}, t.shape());
            assertArrayEquals(new float[] {1.25f, -3f}, t.toFloats());
        }
        // Other spellings NumPy has used or accepts: no trailing comma, Python 2 longs, key order, double quotes.
        HostTensor t = read(handMade(1, "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}",
                floatsLE(4f, 5f)), "old.npy");
        assertArrayEquals(new long[] {1, 2}, t.shape());
        assertArrayEquals(new float[] {4f, 5f}, t.toFloats());
        HostTensor bytes = read(handMade(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
                new byte[] {1, 2, (byte) 255}), "u1.npy");
        assertEquals(DataType.UINT8, bytes.type());
        assertArrayEquals(new long[] {1, 2, 255}, bytes.toLongs());
        HostTensor bigByte = read(handMade(1, "{'descr': '>i1', 'fortran_order': False, 'shape': (1,), }",
                new byte[] {-5}), "i1.npy");
        assertArrayEquals(new long[] {-5}, bigByte.toLongs());
    }

    @Test
    void fortranOrderIsTransposedToCOrder() {
        // The 2x3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
        HostTensor t = read(handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                floatsLE(1, 4, 2, 5, 3, 6)), "f.npy");
        assertArrayEquals(new long[] {2, 3}, t.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.toFloats());
        // A 2x2x2 cube: element (i, j, k) = 100i + 10j + k; Fortran order varies i fastest.
        float[] f = new float[8];
        float[] c = new float[8];
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                for (int k = 0; k < 2; k++) {
                    f[i + 2 * j + 4 * k] = 100 * i + 10 * j + k;
                    c[4 * i + 2 * j + k] = 100 * i + 10 * j + k;
                }
            }
        }
        HostTensor cube = read(handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2, 2), }",
                floatsLE(f)), "cube.npy");
        assertArrayEquals(c, cube.toFloats());
    }

    @Test
    void readsWhatNumpyWrites() {
        for (String f : List.of("f4.npy", "v2.npy", "v3.npy", "fortran.npy")) {
            HostTensor t = Npy.read(resource("npy/" + f));
            assertEquals(DataType.FLOAT, t.type(), f);
            assertArrayEquals(new long[] {2, 3}, t.shape(), f);
            assertArrayEquals(BASE, t.toFloats(), f);
        }
        HostTensor transposed = Npy.read(resource("npy/transposed.npy"));
        assertArrayEquals(new long[] {3, 2}, transposed.shape());
        assertArrayEquals(new float[] {-2.5f, 0.5f, -1.5f, 1.5f, -0.5f, 2.5f}, transposed.toFloats());
        HostTensor scalar = Npy.read(resource("npy/scalar.npy"));
        assertArrayEquals(new long[] {}, scalar.shape());
        assertArrayEquals(new float[] {3.5f}, scalar.toFloats());
        Map<String, DataType> dtypes = Map.of("le_f8", DataType.DOUBLE, "le_i8", DataType.INT64, "le_i4", DataType.INT32,
                "le_i2", DataType.INT16, "na_i1", DataType.INT8, "na_u1", DataType.UINT8, "na_b1", DataType.BOOL,
                "le_f2", DataType.FLOAT16, "le_u2", DataType.UINT16);
        dtypes.forEach((file, type) -> {
            HostTensor t = Npy.read(resource("npy/" + file + ".npy"));
            assertEquals(type, t.type(), file);
            assertArrayEquals(new long[] {3, 2}, t.shape(), file);
            float[] want = type == DataType.BOOL ? new float[] {0, 1, 1, 0, 1, 1} : new float[] {0, 1, 2, 0, 1, 2};
            assertArrayEquals(want, t.toFloats(), file);
        });
    }

    @Test
    void unsupportedNumpyFilesAreNamedErrors() {
        assertOneLine(assertThrows(QwtException.class, () -> Npy.read(resource("npy/big_endian.npy"))),
                "big_endian.npy: ", "'>f4'", "big-endian");
        assertOneLine(assertThrows(QwtException.class, () -> Npy.read(resource("npy/structured.npy"))),
                "structured.npy: ", "structured");
        assertOneLine(assertThrows(QwtException.class, () -> Npy.read(resource("npy/unicode.npy"))),
                "unicode.npy: ", "'<U2' is not supported");
    }

    @Test
    void corruptFilesAreOneLineErrorsNamingTheFile() {
        String ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        assertOneLine(assertThrows(QwtException.class, () -> read(new byte[] {1, 2, 3}, "short.npy")),
                "short.npy: ", "truncated");
        assertOneLine(assertThrows(QwtException.class, () -> read("PK\u0003\u0004 not numpy at all"
                .getBytes(StandardCharsets.ISO_8859_1), "zip.npy")), "zip.npy: ", "bad magic");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1, ok, floatsLE(1f)), "data.npy")),
                "data.npy: ", "truncated");
        assertOneLine(assertThrows(QwtException.class, () -> read(Arrays.copyOf(handMade(1, ok, floatsLE(1, 2)), 30),
                "header.npy")), "header.npy: ", "truncated");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(4, ok, floatsLE(1, 2)), "v4.npy")),
                "v4.npy: ", "version 4");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", floatsLE(1, 2)), "neg.npy")),
                "neg.npy: ", "malformed .npy header");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2\n", floatsLE(1, 2)), "open.npy")),
                "open.npy: ", "malformed .npy header");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'shape': (2,), }", floatsLE(1, 2)), "nofortran.npy")),
                "nofortran.npy: ", "no 'fortran_order'");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", floatsLE(1, 2)), "zero.npy")),
                "zero.npy: ", "malformed");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", floatsLE(1, 2)),
                "huge.npy")), "huge.npy: ", "too large");
        assertOneLine(assertThrows(QwtException.class, () -> read(handMade(1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", floatsLE(1, 2)),
                "big.npy")), "big.npy: ", "too large");
        byte[] longHeader = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                .put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0}).putInt(-1).array();
        assertOneLine(assertThrows(QwtException.class, () -> read(longHeader, "len.npy")), "len.npy: ", "too long");
    }
}
