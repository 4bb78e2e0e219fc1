package dev.qwtonnx.model;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * ONNX Runtime sessions over in-memory models, always created from bytes (never a temporary file).
 *
 * <p>A model too big for one protobuf message is handed over in two parts: the message with its
 * large initializers marked as external data, and those initializers as tensors over the model's
 * own buffers (ORT's {@code AddExternalInitializers}). Buffers memory-mapped on load are passed
 * without a copy; ORT replaces the external references with them before it reads any file, and
 * keeps one copy of its own (measured with ORT 1.29: it does not use the buffers in place).
 */
public final class OrtSessions {
    /** Models serializing to at least this many bytes hand their large initializers over in memory. */
    public static final long IN_MEMORY_FROM = 1L << 30;
    /** The smallest initializer handed over in memory (the rest stay in the message). */
    public static final long IN_MEMORY_MIN_TENSOR = 1L << 20;
    /** A location no file has: the references are replaced before ORT would open it. */
    static final String IN_MEMORY_LOCATION = "qwt-onnx-in-memory-initializer";

    private OrtSessions() {
    }

    /** A session and the tensors it borrows; closing closes both, the session first. */
    public record Handle(OrtSession session, List<OnnxTensor> borrowed) implements AutoCloseable {
        /** Whether the large initializers were handed over in memory. */
        public boolean inMemoryInitializers() {
            return !borrowed.isEmpty();
        }

        @Override
        public void close() throws OrtException {
            try {
                session.close();
            } finally {
                borrowed.forEach(OnnxTensor::close);
            }
        }
    }

    public static Handle create(Model model, OrtSession.SessionOptions opts) throws OrtException {
        return create(model, opts, IN_MEMORY_FROM, IN_MEMORY_MIN_TENSOR);
    }

    /**
     * @param inMemoryFrom models at least this big (serialized) hand initializers over in memory
     * @param minTensor the smallest initializer handed over that way
     */
    public static Handle create(Model model, OrtSession.SessionOptions opts, long inMemoryFrom, long minTensor)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        if (model.serializedSize() < inMemoryFrom) {
            return new Handle(env.createSession(model.toBytes(), opts), List.of());
        }
        Predicate<TensorProto> large = ExternalData.rawAtLeast(minTensor).and(t -> javaType(t) != null);
        ExternalData.Split split = ExternalData.split(model.proto(), large, IN_MEMORY_LOCATION, false);
        List<OnnxTensor> borrowed = new ArrayList<>();
        try {
            Map<String, OnnxTensorLike> initializers = new LinkedHashMap<>();
            for (ExternalData.Payload p : split.payloads()) {
                OnnxTensor t = OnnxTensor.createTensor(env, direct(p.bytes().asReadOnlyByteBuffer()),
                        Tensors.dims(p.tensor()), javaType(p.tensor()));
                borrowed.add(t);
                initializers.put(p.tensor().getName(), t);
            }
            opts.addExternalInitializers(initializers);
            // ORT copies the initializers it is handed; prepacking would make a second, packed copy
            // while the first still exists (measured: a 256 MB MatMul weight peaks at +519 MB with
            // prepacking, +266 MB without). Unpacked MatMul runs about 2x slower at a few rows.
            opts.addConfigEntry("session.disable_prepacking", "1");
            byte[] bytes = new Model(split.proto()).toBytes();
            return new Handle(env.createSession(bytes, opts), List.copyOf(borrowed));
        } catch (OrtException | RuntimeException e) {
            borrowed.forEach(OnnxTensor::close);
            throw e;
        }
    }

    /** The buffer itself when it is direct (mapped payloads are), else a direct copy. */
    private static ByteBuffer direct(ByteBuffer b) {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new dev.qwtonnx.QwtException("big-endian platforms are not supported");
        }
        if (b.isDirect()) {
            return b.order(ByteOrder.LITTLE_ENDIAN);
        }
        ByteBuffer copy = ByteBuffer.allocateDirect(b.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(b).flip();
        return copy;
    }

    /** The Java type ORT takes for the tensor's element type, or null for those it cannot take. */
    private static OnnxJavaType javaType(TensorProto t) {
        return switch (t.getDataType()) {
            case TensorProto.DataType.FLOAT_VALUE -> OnnxJavaType.FLOAT;
            case TensorProto.DataType.DOUBLE_VALUE -> OnnxJavaType.DOUBLE;
            case TensorProto.DataType.INT8_VALUE -> OnnxJavaType.INT8;
            case TensorProto.DataType.UINT8_VALUE -> OnnxJavaType.UINT8;
            case TensorProto.DataType.INT16_VALUE -> OnnxJavaType.INT16;
            case TensorProto.DataType.INT32_VALUE -> OnnxJavaType.INT32;
            case TensorProto.DataType.INT64_VALUE -> OnnxJavaType.INT64;
            case TensorProto.DataType.BOOL_VALUE -> OnnxJavaType.BOOL;
            case TensorProto.DataType.FLOAT16_VALUE -> OnnxJavaType.FLOAT16;
            case TensorProto.DataType.BFLOAT16_VALUE -> OnnxJavaType.BFLOAT16;
            default -> null;
        };
    }
}
