package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** NumPy's .npy format (versions 1 to 3), little-endian C-order arrays of the common dtypes. */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {
    }

    public static HostTensor read(InputStream in, String origin) {
        try {
            DataInputStream d = new DataInputStream(in);
            byte[] magic = new byte[6];
            d.readFully(magic);
            for (int i = 0; i < 6; i++) {
                if (magic[i] != MAGIC[i]) {
                    throw new QwtException(origin + ": not a .npy array (bad magic)");
                }
            }
            int major = d.readUnsignedByte();
            d.readUnsignedByte();
            long headerLen;
            if (major == 1) {
                headerLen = Short.toUnsignedInt(Short.reverseBytes(d.readShort()));
            } else if (major == 2 || major == 3) {
                headerLen = Integer.toUnsignedLong(Integer.reverseBytes(d.readInt()));
            } else {
                throw new QwtException(origin + ": unsupported .npy version " + major);
            }
            if (headerLen > 1 << 20) {
                throw new QwtException(origin + ": .npy header too long (" + headerLen + " bytes)");
            }
            byte[] hb = new byte[(int) headerLen];
            d.readFully(hb);
            String header = new String(hb, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            String descr = group(DESCR, header, origin, "descr");
            if (group(FORTRAN, header, origin, "fortran_order").equals("True")) {
                throw new QwtException(origin + ": Fortran-order arrays are not supported; save with np.ascontiguousarray");
            }
            long[] shape = parseShape(group(SHAPE, header, origin, "shape"), origin);
            DataType type = dtype(descr, origin);
            long bytes = Math.multiplyExact(HostTensor.numel(shape), (long) type.bytes);
            if (bytes > Integer.MAX_VALUE - 16) {
                throw new QwtException(origin + ": array of " + bytes + " bytes is too large");
            }
            byte[] data = new byte[(int) bytes];
            d.readFully(data);
            return new HostTensor(type, shape, ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN));
        } catch (EOFException e) {
            throw new QwtException(origin + ": truncated .npy array");
        } catch (IOException e) {
            throw new QwtException(origin + ": cannot read .npy array: " + e.getMessage());
        } catch (ArithmeticException e) {
            throw new QwtException(origin + ": .npy shape is too large");
        }
    }

    private static String group(Pattern p, String header, String origin, String key) {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new QwtException(origin + ": .npy header has no '" + key + "'");
        }
        return m.group(1);
    }

    private static long[] parseShape(String s, String origin) {
        List<Long> dims = new ArrayList<>();
        for (String part : s.split(",")) {
            String t = part.trim();
            if (t.isEmpty()) {
                continue;
            }
            try {
                long v = Long.parseLong(t.endsWith("L") ? t.substring(0, t.length() - 1) : t);
                if (v < 0) {
                    throw new NumberFormatException();
                }
                dims.add(v);
            } catch (NumberFormatException e) {
                throw new QwtException(origin + ": bad .npy shape (" + s + ")");
            }
        }
        return dims.stream().mapToLong(Long::longValue).toArray();
    }

    private static DataType dtype(String descr, String origin) {
        if (descr.length() < 3 || descr.charAt(0) == '>') {
            throw new QwtException(origin + ": dtype '" + descr + "' is not supported (little-endian numeric arrays only)");
        }
        return switch (descr.substring(1)) {
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
            default -> throw new QwtException(origin + ": dtype '" + descr + "' is not supported");
        };
    }

    private static String descr(DataType t) {
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

    public static void write(OutputStream out, HostTensor t) throws IOException {
        StringBuilder shape = new StringBuilder("(");
        for (long d : t.shape()) {
            shape.append(d).append(", ");
        }
        if (t.rank() > 1) {
            shape.setLength(shape.length() - 2);
        } else if (t.rank() == 1) {
            shape.setLength(shape.length() - 1);
        }
        shape.append(")");
        String header = "{'descr': '" + descr(t.type()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int total = 10 + header.length() + 1;
        int pad = (64 - total % 64) % 64;
        header = header + " ".repeat(pad) + "\n";
        out.write(MAGIC);
        out.write(1);
        out.write(0);
        int len = header.length();
        out.write(len & 0xff);
        out.write((len >> 8) & 0xff);
        out.write(header.getBytes(StandardCharsets.ISO_8859_1));
        ByteBuffer b = t.bytes();
        byte[] data = new byte[b.remaining()];
        b.get(data);
        out.write(data);
    }
}
