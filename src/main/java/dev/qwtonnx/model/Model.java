package dev.qwtonnx.model;

import com.google.protobuf.CodedOutputStream;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;

/**
 * An ONNX model held in memory with every tensor's payload in its raw_data (external data is
 * resolved on load). Immutable: passes return a new Model.
 *
 * <p>Large payloads read from external data are memory-mapped ByteStrings, so a model whose weights
 * total more than protobuf's 2 GB limit can be held and transformed; it is just never serialized
 * whole. {@link ModelIO#save} and {@link dev.qwtonnx.ort.OrtSessions} move large tensors out of the
 * message.
 */
public final class Model {
    /** The default ONNX operator domain, which files spell as "" or "ai.onnx". */
    public static final String DEFAULT_DOMAIN = "";

    /** The largest message we serialize: a Java array's limit, just under protobuf's 2^31 - 1 bytes. */
    public static final long MAX_MESSAGE_BYTES = Integer.MAX_VALUE - 8;

    /** Below this many bytes of initializer payload, protobuf's own (int) size is exact and cheap. */
    private static final long SMALL_PAYLOAD = 1L << 30;

    private final ModelProto proto;
    private long serializedSize = -1; // computed on first use; the model is immutable

    public Model(ModelProto proto) {
        this.proto = proto;
    }

    public ModelProto proto() {
        return proto;
    }

    public GraphProto graph() {
        return proto.getGraph();
    }

    public Model withGraph(GraphProto graph) {
        return new Model(proto.toBuilder().setGraph(graph).build());
    }

    public Model withProto(ModelProto p) {
        return new Model(p);
    }

    /** ONNX Runtime's own operators' domain (its contrib and fused operators, its integer kernels). */
    public static final String MICROSOFT_DOMAIN = "com.microsoft";

    public static boolean isDefaultDomain(String domain) {
        return domain == null || domain.isEmpty() || domain.equals("ai.onnx");
    }

    /** The opset version imported for a domain, or -1 when the model does not import it. */
    public long opsetVersion(String domain) {
        for (OperatorSetIdProto o : proto.getOpsetImportList()) {
            if (isDefaultDomain(domain) ? isDefaultDomain(o.getDomain()) : o.getDomain().equals(domain)) {
                return o.getVersion();
            }
        }
        return -1;
    }

    /** The same model importing {@code version} of the default domain. */
    public Model withDefaultOpset(long version) {
        ModelProto.Builder b = proto.toBuilder();
        boolean found = false;
        for (int i = 0; i < b.getOpsetImportCount(); i++) {
            if (isDefaultDomain(b.getOpsetImport(i).getDomain())) {
                b.setOpsetImport(i, b.getOpsetImport(i).toBuilder().setVersion(version));
                found = true;
            }
        }
        if (!found) {
            b.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(version));
        }
        return new Model(b.build());
    }

    /**
     * The model's size as one protobuf message, in bytes: exact below 1 GB of initializers, at most
     * 5 bytes over above (where protobuf's own int size would overflow).
     */
    public long serializedSize() {
        if (serializedSize < 0) {
            serializedSize = computeSerializedSize();
        }
        return serializedSize;
    }

    private long computeSerializedSize() {
        GraphProto g = proto.getGraph();
        long payload = 0;
        for (TensorProto t : g.getInitializerList()) {
            payload += t.getRawData().size();
        }
        if (payload < SMALL_PAYLOAD) {
            return proto.getSerializedSize();
        }
        // protobuf sizes are ints: add the initializers (each under 2 GB) up in longs.
        long rest = proto.toBuilder().setGraph(g.toBuilder().clearInitializer()).build().getSerializedSize();
        long initializers = 0;
        for (TensorProto t : g.getInitializerList()) {
            int n = t.getSerializedSize();
            initializers += 1 + CodedOutputStream.computeUInt32SizeNoTag(n) + n;
        }
        // The graph's length prefix grows by at most 5 bytes.
        return rest + initializers + 5;
    }

    /** Whether the model fits in one protobuf message (see {@link #MAX_MESSAGE_BYTES}). */
    public boolean fitsOneMessage() {
        return serializedSize() <= MAX_MESSAGE_BYTES;
    }

    /** The serialized model; a model over protobuf's 2 GB limit gets a one-line error. */
    public byte[] toBytes() {
        if (!fitsOneMessage()) {
            throw new QwtException("the model is " + serializedSize() + " bytes, over protobuf's 2 GB limit for one "
                    + "message; it can only be saved with its tensors as external data (--external-data auto or always)");
        }
        return proto.toByteArray();
    }
}
