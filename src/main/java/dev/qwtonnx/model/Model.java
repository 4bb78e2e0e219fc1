package dev.qwtonnx.model;

import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;

/**
 * An ONNX model held in memory with every tensor's payload inline (external data is resolved on
 * load). Immutable: passes return a new Model.
 */
public final class Model {
    /** The default ONNX operator domain, which files spell as "" or "ai.onnx". */
    public static final String DEFAULT_DOMAIN = "";

    private final ModelProto proto;

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

    public byte[] toBytes() {
        return proto.toByteArray();
    }
}
