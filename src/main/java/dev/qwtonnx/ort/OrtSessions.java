package dev.qwtonnx.ort;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.CodedOutputStream;
import dev.qwtonnx.model.DirectMemory;
import dev.qwtonnx.model.ExternalData;
import dev.qwtonnx.model.MappedPayloads;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * ONNX Runtime sessions over in-memory models, always created from bytes (never a temporary file).
 *
 * <p>A model of 16 MB or more keeps its large initializers out of the message, handed over as
 * tensors over our buffers (ORT's {@code AddExternalInitializers}), of which ORT keeps a copy of
 * its own (it does not use them in place): that spares ORT parsing them out of the message.
 *
 * <p>A model of 1 GB or more goes further, for memory. Those of its large initializers still
 * byte-for-byte the payloads mapped on load (see {@link MappedPayloads}) are marked as external
 * data in the file they came from, and ORT maps that file itself: on CPU, with prepacking off, it
 * uses the mapped pages in place, so the weights are in the page cache once, shared with our own
 * mapping (prepacking would make a packed anonymous copy of each). The others (weights a pass
 * computed) are handed over as tensors, as for smaller models.
 */
public final class OrtSessions {
    /** Models serializing to at least this many bytes read mapped weights from their file, prepacking off. */
    public static final long IN_MEMORY_FROM = 1L << 30;
    /**
     * The smallest initializer of a model of {@link #IN_MEMORY_FROM} or more read from its file or
     * handed over in memory (the rest stay in the message).
     */
    public static final long IN_MEMORY_MIN_TENSOR = 1L << 20;
    /**
     * The smallest initializer of a smaller model handed over in memory: int8 weights are small
     * (a transformer layer's are a few hundred KB), and handing them over rather than in the message
     * spares ORT parsing and copying them out of it, even with a direct copy of our heap bytes made
     * first; smaller tensors than this gain nothing from it.
     */
    public static final long HAND_OVER_MIN_TENSOR = 64L << 10;
    /** A location no file has: the references are replaced before ORT would open it. */
    static final String IN_MEMORY_LOCATION = "qwt-onnx-in-memory-initializer";
    /** ORT's session config entry: the folder external data of a model created from bytes is read from. */
    static final String EXTERNAL_FOLDER = "session.model_external_initializers_file_folder_path";

    private OrtSessions() {
    }

    /**
     * A session and the tensors it borrows; closing closes both, the session first.
     *
     * @param fromFiles how many initializers ORT reads from the files they were loaded from
     * @param copies direct copies made of heap payloads for {@code borrowed}, freed on close
     */
    public record Handle(OrtSession session, List<OnnxTensor> borrowed, int fromFiles, List<ByteBuffer> copies)
            implements AutoCloseable {
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
                copies.forEach(DirectMemory::free);
            }
        }
    }

    /**
     * Models serializing to at least this many bytes hand their large initializers over as tensors
     * rather than in the message: ORT then neither parses them out of the protobuf nor copies them
     * from it. Below this size the gain is a few milliseconds.
     */
    public static final long HAND_OVER_FROM = 16L << 20;

    /**
     * Null where ONNX Runtime loads {@code model}, else the first line of why not: a session made and closed,
     * at the optimization level the run's sessions use (constant folding can give the type inference shapes
     * the graph as written does not), without weight prepacking.
     */
    public static String refusal(Model model) {
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            opts.addConfigEntry("session.disable_prepacking", "1");
            try (Handle h = create(model, opts)) {
                return null;
            }
        } catch (OrtException e) {
            String m = firstLine(e.getMessage());
            int at = m.indexOf("message: ");
            return at < 0 ? m : m.substring(at + "message: ".length());
        }
    }

    /** The first line of an ORT message (its later lines are a stack of its sources), "" for none. */
    public static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /**
     * A session over {@code model}: from its bytes; from {@link #HAND_OVER_FROM} up with its
     * initializers of {@link #HAND_OVER_MIN_TENSOR} or more handed over as tensors; from
     * {@link #IN_MEMORY_FROM} up reading mapped weights of {@link #IN_MEMORY_MIN_TENSOR} or more
     * from their own file (handing the others of that size over), prepacking off.
     */
    public static Handle create(Model model, OrtSession.SessionOptions opts) throws OrtException {
        return create(model, opts, IN_MEMORY_FROM,
                model.serializedSize() >= IN_MEMORY_FROM ? IN_MEMORY_MIN_TENSOR : HAND_OVER_MIN_TENSOR);
    }

    /**
     * @param inMemoryFrom models at least this big (serialized) read mapped weights from their file
     *                     and have prepacking off (the memory-bound path)
     * @param minTensor the smallest initializer handed over as a tensor or file reference
     */
    public static Handle create(Model model, OrtSession.SessionOptions opts, long inMemoryFrom, long minTensor)
            throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        // ORT's warnings (an initializer no node reads, a shape it cannot infer) are about graphs the run made for
        // measuring, or about the user's model where the run says what it does with it: not for the user's terminal;
        // nor its errors, which the run reports in its own line (OrtStartup.sessionLogLevel).
        opts.setSessionLogLevel(OrtStartup.sessionLogLevel());
        boolean huge = model.serializedSize() >= inMemoryFrom;
        if (!huge && model.serializedSize() < HAND_OVER_FROM) {
            return new Handle(fromBytes(env, model, opts), List.of(), 0, List.of());
        }
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new dev.qwtonnx.QwtException("big-endian platforms are not supported");
        }
        Predicate<TensorProto> large = ExternalData.rawAtLeast(minTensor).and(t -> javaType(t) != null);
        FileReferences refs = huge ? FileReferences.of(model.proto(), large) : FileReferences.none(model.proto());
        if (refs.count() > 0) {
            opts.addConfigEntry(EXTERNAL_FOLDER, refs.folder().toString());
        }
        ExternalData.Split split = ExternalData.split(refs.proto(), large, IN_MEMORY_LOCATION, false);
        List<OnnxTensor> borrowed = new ArrayList<>();
        List<ByteBuffer> copies = new ArrayList<>();
        try {
            Map<String, OnnxTensorLike> initializers = new LinkedHashMap<>();
            for (ExternalData.Payload p : split.payloads()) {
                ByteBuffer b = p.bytes().asReadOnlyByteBuffer();
                if (!b.isDirect()) {
                    b = direct(b);
                    copies.add(b);
                }
                OnnxTensor t = OnnxTensor.createTensor(env, b.order(ByteOrder.LITTLE_ENDIAN),
                        Tensors.dims(p.tensor()), javaType(p.tensor()));
                borrowed.add(t);
                initializers.put(p.tensor().getName(), t);
            }
            if (!initializers.isEmpty()) {
                opts.addExternalInitializers(initializers);
            }
            if (huge && !"1".equals(opts.getConfigEntries().get("session.disable_prepacking"))) {
                // ORT copies the initializers it is handed; prepacking would make a second, packed copy
                // while the first still exists (about twice the weight's size at the peak), and an
                // anonymous packed copy of each mapped weight. Unpacked MatMul is slower at a few rows,
                // so smaller models keep prepacking. Set once: ORT warns on standard error when a
                // session's options set an entry again (a session for few runs has it off already).
                opts.addConfigEntry("session.disable_prepacking", "1");
            }
            return new Handle(fromBytes(env, new Model(split.proto()), opts), List.copyOf(borrowed), refs.count(),
                    List.copyOf(copies));
        } catch (OrtException | RuntimeException e) {
            borrowed.forEach(OnnxTensor::close);
            copies.forEach(DirectMemory::free);
            throw e;
        }
    }

    /** Models serializing to at least this many bytes are handed to ORT from memory off the heap. */
    static final long OFF_HEAP_FROM = 64L << 20;

    /**
     * A session over the serialized model. From {@link #OFF_HEAP_FROM} up, the bytes are written to
     * a direct buffer freed as soon as ORT has parsed them, rather than to a heap array: each session
     * over a large quantized model would otherwise leave the model's size in garbage, and the heap
     * grows with it towards -Xmx before a collection.
     */
    private static OrtSession fromBytes(OrtEnvironment env, Model model, OrtSession.SessionOptions opts)
            throws OrtException {
        if (model.serializedSize() < OFF_HEAP_FROM || !model.fitsOneMessage() || !DirectMemory.freesAtOnce()) {
            return env.createSession(model.toBytes(), opts);
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(model.proto().getSerializedSize());
        try {
            CodedOutputStream out = CodedOutputStream.newInstance(buf);
            model.proto().writeTo(out);
            out.flush();
            buf.flip();
            // ORT parses the bytes into a model of its own while creating the session; it keeps no pointer to them.
            return env.createSession(buf, opts);
        } catch (java.io.IOException e) {
            throw new dev.qwtonnx.QwtException("cannot serialize the model for ONNX Runtime: " + e.getMessage());
        } finally {
            DirectMemory.free(buf);
        }
    }

    /**
     * The model with the main graph's large initializers that are still the payloads mapped on load
     * marked as external data in their own file (those of one folder: ORT reads external data from
     * one), and how many were.
     */
    record FileReferences(ModelProto proto, Path folder, int count) {
        /** No reference: every large initializer is handed over in memory. */
        static FileReferences none(ModelProto model) {
            return new FileReferences(model, null, 0);
        }

        static FileReferences of(ModelProto model, Predicate<TensorProto> large) {
            GraphProto g = model.getGraph();
            GraphProto.Builder b = null;
            Path folder = null;
            int count = 0;
            for (int i = 0; i < g.getInitializerCount(); i++) {
                TensorProto t = g.getInitializer(i);
                MappedPayloads.Source s = large.test(t) ? MappedPayloads.source(t.getRawData()) : null;
                if (s == null || s.length() != t.getRawData().size()) {
                    continue;
                }
                folder = folder == null ? s.file().getParent() : folder;
                if (!s.file().getParent().equals(folder)) {
                    continue;
                }
                b = b == null ? g.toBuilder() : b;
                b.setInitializer(i, t.toBuilder().clearRawData().clearExternalData()
                        .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                        .addExternalData(entry("location", s.file().getFileName().toString()))
                        .addExternalData(entry("offset", Long.toString(s.offset())))
                        .addExternalData(entry("length", Long.toString(s.length()))).build());
                count++;
            }
            return new FileReferences(b == null ? model : model.toBuilder().setGraph(b).build(), folder, count);
        }

        private static StringStringEntryProto entry(String k, String v) {
            return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
        }
    }

    /** A direct copy of a heap buffer (mapped payloads are direct already and passed as they are). */
    private static ByteBuffer direct(ByteBuffer b) {
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
