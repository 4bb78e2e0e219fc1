package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/** Reading and building TensorProto payloads, whichever of its fields holds the data. */
public final class Tensors {
    private Tensors() {
    }

    public static long[] dims(TensorProto t) {
        long[] d = new long[t.getDimsCount()];
        for (int i = 0; i < d.length; i++) {
            d[i] = t.getDims(i);
        }
        return d;
    }

    public static boolean isExternal(TensorProto t) {
        return t.getDataLocation() == TensorProto.DataLocation.EXTERNAL;
    }

    /** Decodes an in-memory TensorProto (external data must already be loaded). */
    public static HostTensor toHost(TensorProto t) {
        if (isExternal(t)) {
            throw new QwtException("tensor '" + t.getName() + "' still refers to external data");
        }
        DataType type = DataType.of(t.getDataType());
        long[] dims = dims(t);
        int n = Math.toIntExact(HostTensor.numel(dims));
        if (t.hasRawData()) {
            ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            if (raw.remaining() != (long) n * type.bytes) {
                throw new QwtException("tensor '" + t.getName() + "' has " + raw.remaining()
                        + " bytes of raw data but its dims " + java.util.Arrays.toString(dims) + " of "
                        + type + " need " + ((long) n * type.bytes));
            }
            return new HostTensor(type, dims, raw);
        }
        ByteBuffer b = ByteBuffer.allocate(n * type.bytes).order(ByteOrder.LITTLE_ENDIAN);
        int count = switch (type) {
            case FLOAT -> t.getFloatDataCount();
            case DOUBLE -> t.getDoubleDataCount();
            case INT64 -> t.getInt64DataCount();
            case UINT32, UINT64 -> t.getUint64DataCount();
            default -> t.getInt32DataCount();
        };
        if (count != n) {
            throw new QwtException("tensor '" + t.getName() + "' holds " + count + " values but its dims "
                    + java.util.Arrays.toString(dims) + " need " + n);
        }
        for (int i = 0; i < n; i++) {
            switch (type) {
                case FLOAT -> b.putFloat(t.getFloatData(i));
                case DOUBLE -> b.putDouble(t.getDoubleData(i));
                case INT64 -> b.putLong(t.getInt64Data(i));
                case UINT64 -> b.putLong(t.getUint64Data(i));
                case UINT32 -> b.putInt((int) t.getUint64Data(i));
                case INT32 -> b.putInt(t.getInt32Data(i));
                case INT16, UINT16, FLOAT16 -> b.putShort((short) t.getInt32Data(i));
                case INT8, UINT8, BOOL -> b.put((byte) t.getInt32Data(i));
            }
        }
        b.flip();
        return new HostTensor(type, dims, b);
    }

    public static float[] floats(TensorProto t) {
        return toHost(t).toFloats();
    }

    /**
     * A tensor's values as floats: for a FLOAT tensor with raw data, a view of its payload (no copy:
     * a mapped weight stays in the page cache instead of being copied into the heap), else a copy.
     */
    public static FloatBuffer floatView(TensorProto t) {
        HostTensor h = toHost(t);
        if (h.type() == DataType.FLOAT && t.hasRawData()) {
            return t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        }
        return FloatBuffer.wrap(h.toFloats());
    }

    public static long[] longs(TensorProto t) {
        return toHost(t).toLongs();
    }

    public static TensorProto floatTensor(String name, long[] dims, float[] values) {
        return HostTensor.ofFloats(dims, values).toProto(name);
    }

    public static TensorProto floatScalar(String name, float v) {
        return floatTensor(name, new long[0], new float[] {v});
    }

    public static TensorProto int64Tensor(String name, long[] dims, long[] values) {
        return HostTensor.ofLongs(dims, values).toProto(name);
    }

    public static TensorProto int32Tensor(String name, long[] dims, int[] values) {
        return HostTensor.ofInts(dims, values).toProto(name);
    }

    /** An int8 tensor over the given bytes, which the tensor takes over (no copy: they must not change). */
    public static TensorProto int8Tensor(String name, long[] dims, byte[] values) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(DataType.INT8.code)
                .setRawData(UnsafeByteOperations.unsafeWrap(values));
        for (long d : dims) {
            b.addDims(d);
        }
        return b.build();
    }

    /** A uint8 tensor over the given bytes, which the tensor takes over (no copy: they must not change). */
    public static TensorProto uint8Tensor(String name, long[] dims, byte[] values) {
        return int8Tensor(name, dims, values).toBuilder().setDataType(DataType.UINT8.code).build();
    }

    /** A scalar of an 8- or 16-bit integer type (a zero point), from a value already in range. */
    public static TensorProto intScalar(String name, DataType type, int value) {
        return switch (type) {
            case INT8, UINT8 -> byteTensor(name, type, new long[0], new int[] {value});
            // ONNX keeps 16-bit integers in int32_data.
            case INT16, UINT16 -> TensorProto.newBuilder().setName(name).setDataType(type.code).addInt32Data(value).build();
            default -> throw new IllegalArgumentException("integer scalar of type " + type);
        };
    }

    /** An int8 (signed) or uint8 tensor from values already in range. */
    public static TensorProto byteTensor(String name, DataType type, long[] dims, int[] values) {
        if (type != DataType.INT8 && type != DataType.UINT8) {
            throw new IllegalArgumentException("byte tensor of type " + type);
        }
        byte[] raw = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            raw[i] = (byte) values[i];
        }
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(type.code)
                .setRawData(ByteString.copyFrom(raw));
        for (long d : dims) {
            b.addDims(d);
        }
        return b.build();
    }
}
