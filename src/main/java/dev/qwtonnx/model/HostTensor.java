package dev.qwtonnx.model;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A dense tensor in JVM memory: element type, shape and little-endian bytes. The common currency
 * between calibration readers, ORT sessions and TensorProto initializers.
 */
public final class HostTensor {
    private final DataType type;
    private final long[] shape;
    private final ByteBuffer data;

    public HostTensor(DataType type, long[] shape, ByteBuffer data) {
        this.type = type;
        this.shape = shape.clone();
        this.data = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        this.data.rewind();
        long expected = numel(shape) * type.bytes;
        if (this.data.remaining() != expected) {
            throw new QwtException("tensor of type " + type + " and shape " + Arrays.toString(shape)
                    + " needs " + expected + " bytes but has " + this.data.remaining());
        }
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new QwtException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public static HostTensor ofFloats(long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return new HostTensor(DataType.FLOAT, shape, b);
    }

    public static HostTensor ofLongs(long[] shape, long[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return new HostTensor(DataType.INT64, shape, b);
    }

    public static HostTensor ofInts(long[] shape, int[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return new HostTensor(DataType.INT32, shape, b);
    }

    public DataType type() {
        return type;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long numel() {
        return numel(shape);
    }

    /**
     * Row {@code index} along the first axis, keeping that axis at size 1 (a sample of a stacked batch): a view of
     * these bytes, not a copy.
     */
    public HostTensor row(long index) {
        if (shape.length == 0 || index < 0 || index >= shape[0]) {
            throw new IndexOutOfBoundsException("row " + index + " of shape " + Arrays.toString(shape));
        }
        long[] one = shape.clone();
        one[0] = 1;
        int rowBytes = Math.toIntExact(numel(one) * type.bytes);
        ByteBuffer b = data.duplicate();
        b.position(Math.toIntExact(index * rowBytes)).limit(Math.toIntExact((index + 1) * rowBytes));
        return new HostTensor(type, one, b.slice());
    }

    /** A read-only little-endian view of the bytes, positioned at 0. */
    public ByteBuffer bytes() {
        return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The values widened to float (integers exactly where they fit). */
    public float[] toFloats() {
        int n = Math.toIntExact(numel());
        float[] out = new float[n];
        ByteBuffer b = bytes();
        for (int i = 0; i < n; i++) {
            out[i] = floatAt(type, b, i);
        }
        return out;
    }

    /** Element {@code i} of little-endian {@code b} holding values of {@code type}, widened to float. */
    public static float floatAt(DataType type, ByteBuffer b, int i) {
        return switch (type) {
            case FLOAT -> b.getFloat(i * 4);
            case DOUBLE -> (float) b.getDouble(i * 8);
            case INT8 -> b.get(i);
            case UINT8, BOOL -> b.get(i) & 0xff;
            case INT16 -> b.getShort(i * 2);
            case UINT16 -> b.getShort(i * 2) & 0xffff;
            case INT32 -> b.getInt(i * 4);
            case UINT32 -> b.getInt(i * 4) & 0xffffffffL;
            case INT64, UINT64 -> b.getLong(i * 8);
            case FLOAT16 -> ai.onnxruntime.platform.Fp16Conversions.fp16ToFloat(b.getShort(i * 2));
        };
    }

    /** The values as long (integer types only). */
    public long[] toLongs() {
        int n = Math.toIntExact(numel());
        long[] out = new long[n];
        ByteBuffer b = bytes();
        for (int i = 0; i < n; i++) {
            out[i] = switch (type) {
                case INT8 -> b.get(i);
                case UINT8, BOOL -> b.get(i) & 0xff;
                case INT16 -> b.getShort(i * 2);
                case UINT16 -> b.getShort(i * 2) & 0xffff;
                case INT32 -> b.getInt(i * 4);
                case UINT32 -> b.getInt(i * 4) & 0xffffffffL;
                case INT64, UINT64 -> b.getLong(i * 8);
                default -> throw new QwtException("tensor of type " + type + " is not an integer tensor");
            };
        }
        return out;
    }

    /** Same bytes, other shape (element count must match). */
    public HostTensor reshape(long[] newShape) {
        return new HostTensor(type, newShape, data);
    }

    public TensorProto toProto(String name) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(type.code);
        for (long d : shape) {
            b.addDims(d);
        }
        b.setRawData(com.google.protobuf.ByteString.copyFrom(bytes()));
        return b.build();
    }

    public OnnxTensor toOnnx(OrtEnvironment env) throws OrtException {
        return toOnnx(env, b -> { });
    }

    /**
     * As {@link #toOnnx(OrtEnvironment)}, handing {@code buffer} the direct buffer the tensor reads (ORT
     * does not copy it), which the caller may free once the tensor is closed.
     */
    public OnnxTensor toOnnx(OrtEnvironment env, java.util.function.Consumer<ByteBuffer> buffer) throws OrtException {
        ByteBuffer direct = ByteBuffer.allocateDirect(data.capacity()).order(ByteOrder.nativeOrder());
        buffer.accept(direct);
        ByteBuffer src = bytes();
        // ORT reads direct buffers in native order; our bytes are little-endian.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new QwtException("big-endian platforms are not supported");
        }
        direct.put(src);
        direct.rewind();
        return switch (type) {
            case FLOAT -> OnnxTensor.createTensor(env, direct.asFloatBuffer(), shape);
            case DOUBLE -> OnnxTensor.createTensor(env, direct.asDoubleBuffer(), shape);
            case INT64 -> OnnxTensor.createTensor(env, direct.asLongBuffer(), shape);
            case INT32 -> OnnxTensor.createTensor(env, direct.asIntBuffer(), shape);
            case INT16 -> OnnxTensor.createTensor(env, direct.asShortBuffer(), shape);
            case INT8 -> OnnxTensor.createTensor(env, direct, shape, OnnxJavaType.INT8);
            case UINT8 -> OnnxTensor.createTensor(env, direct, shape, OnnxJavaType.UINT8);
            case BOOL -> OnnxTensor.createTensor(env, direct, shape, OnnxJavaType.BOOL);
            case FLOAT16 -> OnnxTensor.createTensor(env, direct.asShortBuffer(), shape, OnnxJavaType.FLOAT16);
            default -> throw new QwtException("cannot feed a tensor of type " + type + " to ONNX Runtime");
        };
    }

    public static HostTensor fromOnnx(OnnxTensor t) {
        long[] shape = t.getInfo().getShape();
        ByteBuffer src = t.getByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        DataType type = dataType(t.getInfo().type);
        ByteBuffer copy = ByteBuffer.allocate(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(src);
        copy.flip();
        return new HostTensor(type, shape, copy);
    }

    /** Our element type for the one ORT's Java API reports. */
    public static DataType dataType(OnnxJavaType t) {
        return switch (t) {
            case FLOAT -> DataType.FLOAT;
            case DOUBLE -> DataType.DOUBLE;
            case INT64 -> DataType.INT64;
            case INT32 -> DataType.INT32;
            case INT16 -> DataType.INT16;
            case INT8 -> DataType.INT8;
            case UINT8 -> DataType.UINT8;
            case BOOL -> DataType.BOOL;
            case FLOAT16 -> DataType.FLOAT16;
            default -> throw new QwtException("unsupported ONNX Runtime output type " + t);
        };
    }

    @Override
    public String toString() {
        return type + Arrays.toString(shape);
    }
}
