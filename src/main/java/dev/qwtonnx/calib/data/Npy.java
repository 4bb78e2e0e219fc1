package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * NumPy's .npy format (header versions 1.0, 2.0 and 3.0): little-endian numeric arrays. Arrays
 * stored in Fortran order (what {@code np.save(x.T)} writes) are transposed to C order on read.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int MAX_HEADER = 1 << 20;
    private static final int EXACT_READ = 64 << 20;
    private static final String SUPPORTED = "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1";

    private Npy() {
    }

    /** Reads one array; {@code origin} names the file (or archive entry) in error messages. */
    public static HostTensor read(InputStream in, String origin) {
        try {
            byte[] magic = readExactly(in, 8, origin);
            if (!Arrays.equals(Arrays.copyOf(magic, 6), MAGIC)) {
                throw new QwtException(origin + ": not a .npy array (bad magic bytes)");
            }
            int major = magic[6] & 0xff;
            long headerLen;
            if (major == 1) {
                byte[] l = readExactly(in, 2, origin);
                headerLen = (l[0] & 0xff) | (l[1] & 0xff) << 8;
            } else if (major == 2 || major == 3) {
                headerLen = Integer.toUnsignedLong(ByteBuffer.wrap(readExactly(in, 4, origin))
                        .order(ByteOrder.LITTLE_ENDIAN).getInt());
            } else {
                throw new QwtException(origin + ": unsupported .npy format version " + major + "." + (magic[7] & 0xff));
            }
            if (headerLen > MAX_HEADER) {
                throw new QwtException(origin + ": .npy header too long (" + headerLen + " bytes)");
            }
            byte[] hb = readExactly(in, (int) headerLen, origin);
            String header = new String(hb, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            Header h = Header.parse(header, origin);
            long bytes;
            try {
                bytes = Math.multiplyExact(HostTensor.numel(h.shape), (long) h.type.bytes);
            } catch (ArithmeticException e) {
                throw new QwtException(origin + ": .npy shape " + Arrays.toString(h.shape) + " is too large");
            }
            if (bytes > Integer.MAX_VALUE - 16) {
                throw new QwtException(origin + ": array of " + bytes + " bytes is too large (limit 2 GiB per array)");
            }
            byte[] data = readExactly(in, (int) bytes, origin);
            if (h.fortran && h.shape.length > 1) {
                data = fortranToC(data, h.shape, h.type.bytes);
            }
            return new HostTensor(h.type, h.shape, ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN));
        } catch (IOException e) {
            throw new QwtException(origin + ": cannot read .npy array: " + oneLine(e), e);
        }
    }

    /** Reads a .npy file. */
    public static HostTensor read(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, file.toString());
        } catch (IOException e) {
            throw new QwtException(file + ": cannot read: " + oneLine(e), e);
        }
    }

    /** Writes a C-order array with a version 1.0 header (2.0 if the header is too long for 1.0). */
    public static void write(OutputStream out, HostTensor t) {
        StringBuilder shape = new StringBuilder("(");
        long[] dims = t.shape();
        for (int i = 0; i < dims.length; i++) {
            shape.append(i == 0 ? "" : ", ").append(dims[i]);
        }
        shape.append(dims.length == 1 ? ",)" : ")");
        String dict = "{'descr': '" + descr(t.type()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int version = dict.length() + 64 <= 0xffff ? 1 : 2;
        int prefix = version == 1 ? 10 : 12;
        int pad = (64 - (prefix + dict.length() + 1) % 64) % 64;
        byte[] header = (dict + " ".repeat(pad) + "\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer head = ByteBuffer.allocate(prefix).order(ByteOrder.LITTLE_ENDIAN).put(MAGIC).put((byte) version)
                .put((byte) 0);
        if (version == 1) {
            head.putShort((short) header.length);
        } else {
            head.putInt(header.length);
        }
        ByteBuffer b = t.bytes();
        byte[] data = new byte[b.remaining()];
        b.get(data);
        try {
            out.write(head.array());
            out.write(header);
            out.write(data);
        } catch (IOException e) {
            throw new QwtException("cannot write .npy array: " + oneLine(e), e);
        }
    }

    /** The NumPy dtype string for a type. */
    public static String descr(DataType t) {
        return switch (t) {
            case FLOAT -> "<f4";
            case DOUBLE -> "<f8";
            case FLOAT16 -> "<f2";
            case INT64 -> "<i8";
            case INT32 -> "<i4";
            case INT16 -> "<i2";
            case INT8 -> "|i1";
            case UINT8 -> "|u1";
            case UINT16 -> "<u2";
            case UINT32 -> "<u4";
            case UINT64 -> "<u8";
            case BOOL -> "|b1";
        };
    }

    private static DataType dtype(String descr, String origin) {
        if (descr.length() >= 2 && descr.charAt(0) == '>' && !descr.endsWith("1")) {
            throw new QwtException(origin + ": dtype '" + descr
                    + "' is big-endian; only little-endian arrays are read (save arr.astype(arr.dtype.newbyteorder('<')))");
        }
        String kind = descr.length() >= 2 && "<|=>".indexOf(descr.charAt(0)) >= 0 ? descr.substring(1) : descr;
        return switch (kind) {
            case "f4" -> DataType.FLOAT;
            case "f8" -> DataType.DOUBLE;
            case "f2" -> DataType.FLOAT16;
            case "i8" -> DataType.INT64;
            case "i4" -> DataType.INT32;
            case "i2" -> DataType.INT16;
            case "i1" -> DataType.INT8;
            case "u1" -> DataType.UINT8;
            case "u2" -> DataType.UINT16;
            case "u4" -> DataType.UINT32;
            case "u8" -> DataType.UINT64;
            case "b1" -> DataType.BOOL;
            default -> throw new QwtException(origin + ": dtype '" + descr + "' is not supported (numeric dtypes only: "
                    + SUPPORTED + ")");
        };
    }

    /** Reorders a column-major array to row-major. */
    static byte[] fortranToC(byte[] src, long[] shape, int elem) {
        int rank = shape.length;
        int n = src.length / elem;
        long[] fStride = new long[rank];
        long s = 1;
        for (int d = 0; d < rank; d++) {
            fStride[d] = s;
            s *= shape[d];
        }
        byte[] out = new byte[src.length];
        long[] idx = new long[rank];
        long from = 0;
        for (int i = 0; i < n; i++) { // i walks C order; idx is its multi-index, from its Fortran offset
            System.arraycopy(src, (int) (from * elem), out, i * elem, elem);
            for (int d = rank - 1; d >= 0; d--) {
                idx[d]++;
                from += fStride[d];
                if (idx[d] < shape[d]) {
                    break;
                }
                from -= idx[d] * fStride[d];
                idx[d] = 0;
            }
        }
        return out;
    }

    private static byte[] readExactly(InputStream in, int n, String origin) throws IOException {
        // Up to EXACT_READ, into one array of the size the header gives: readNBytes(n) reads in 8 KB pieces and
        // copies them into a second array, twice the garbage of every sample on every pass. Above it, in pieces, so
        // that a corrupt header claiming gigabytes fails on the short read rather than on the allocation.
        byte[] b;
        int got;
        if (n <= EXACT_READ) {
            b = new byte[n];
            got = in.readNBytes(b, 0, n);
        } else {
            b = in.readNBytes(n);
            got = b.length;
        }
        if (got != n) {
            throw new QwtException(origin + ": truncated .npy array (expected " + n + " more bytes, found " + got
                    + ")");
        }
        return b;
    }

    static String oneLine(IOException e) {
        String m = e instanceof EOFException ? "unexpected end of file" : String.valueOf(e.getMessage());
        return (e.getClass().getSimpleName() + ": " + m).replaceAll("\\s*[\\r\\n]+\\s*", " ");
    }

    /** The header dictionary: a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. */
    private record Header(DataType type, boolean fortran, long[] shape) {
        static Header parse(String text, String origin) {
            Map<String, Object> d = new Literal(text.strip(), origin).dict();
            for (String key : List.of("descr", "fortran_order", "shape")) {
                if (!d.containsKey(key)) {
                    throw new QwtException(origin + ": .npy header has no '" + key + "' (" + text.strip() + ")");
                }
            }
            Object descr = d.get("descr");
            if (!(descr instanceof String ds)) {
                throw new QwtException(origin + ": structured or record dtypes are not supported (numeric dtypes only: "
                        + SUPPORTED + ")");
            }
            if (!(d.get("fortran_order") instanceof Boolean fortran)) {
                throw new QwtException(origin + ": .npy header 'fortran_order' is not True or False");
            }
            if (!(d.get("shape") instanceof long[] shape)) {
                throw new QwtException(origin + ": .npy header 'shape' is not a tuple of integers");
            }
            return new Header(dtype(ds, origin), fortran, shape);
        }
    }

    /** A parser for the small subset of Python literals NumPy writes in headers. */
    private static final class Literal {
        private final String s;
        private final String origin;
        private int p;

        Literal(String s, String origin) {
            this.s = s;
            this.origin = origin;
        }

        Map<String, Object> dict() {
            Map<String, Object> out = new LinkedHashMap<>();
            expect('{');
            while (peek() != '}') {
                Object key = value();
                if (!(key instanceof String k)) {
                    throw bad("dictionary key is not a string");
                }
                expect(':');
                out.put(k, value());
                if (peek() == ',') {
                    p++;
                } else if (peek() != '}') {
                    throw bad("expected ',' or '}'");
                }
            }
            p++;
            if (peek() != 0) {
                throw bad("unexpected text after the dictionary");
            }
            return out;
        }

        private Object value() {
            char c = peek();
            if (c == '\'' || c == '"') {
                int end = s.indexOf(c, p + 1);
                if (end < 0) {
                    throw bad("unterminated string");
                }
                String v = s.substring(p + 1, end);
                p = end + 1;
                return v;
            }
            if (c == '(') {
                p++;
                List<Long> dims = new ArrayList<>();
                while (peek() != ')') {
                    dims.add(integer());
                    if (peek() == ',') {
                        p++;
                    } else if (peek() != ')') {
                        throw bad("expected ',' or ')' in shape");
                    }
                }
                p++;
                return dims.stream().mapToLong(Long::longValue).toArray();
            }
            if (c == '[' || c == '{') { // structured dtype descriptions; skip to the matching bracket
                int depth = 0;
                do {
                    char x = p < s.length() ? s.charAt(p) : 0;
                    if (x == 0) {
                        throw bad("unbalanced brackets");
                    }
                    depth += (x == '[' || x == '{' || x == '(') ? 1 : (x == ']' || x == '}' || x == ')') ? -1 : 0;
                    p++;
                } while (depth > 0);
                return new Object();
            }
            if (s.startsWith("True", p)) {
                p += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("False", p)) {
                p += 5;
                return Boolean.FALSE;
            }
            throw bad(c == 0 ? "unexpected end of header" : "unexpected '" + c + "'");
        }

        private long integer() {
            int start = p;
            while (p < s.length() && Character.isDigit(s.charAt(p))) {
                p++;
            }
            if (start == p) {
                throw bad("shape entry is not a non-negative integer");
            }
            String digits = s.substring(start, p);
            if (p < s.length() && s.charAt(p) == 'L') {
                p++; // Python 2 long
            }
            try {
                return Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw bad("shape entry " + digits + " is too large");
            }
        }

        private char peek() {
            while (p < s.length() && Character.isWhitespace(s.charAt(p))) {
                p++;
            }
            return p < s.length() ? s.charAt(p) : 0;
        }

        private void expect(char c) {
            if (peek() != c) {
                throw bad("expected '" + c + "'");
            }
            p++;
        }

        private QwtException bad(String what) {
            String shown = s.length() > 200 ? s.substring(0, 200) + "..." : s;
            return new QwtException(origin + ": malformed .npy header at character " + p + ": " + what + " ("
                    + shown.replaceAll("[\\r\\n]", " ") + ")");
        }
    }
}
