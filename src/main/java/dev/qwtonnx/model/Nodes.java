package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.List;
import java.util.Optional;

/** Reading node attributes and building nodes. */
public final class Nodes {
    /** metadata_props key naming the pass that created a node. */
    public static final String CREATED_BY = "qwt.created_by";

    /**
     * metadata_props key on a layer node the quantizer rewrote, naming the float node it came from
     * in the prepared model: what pairs our quantized layers with their float ones.
     */
    public static final String FROM = "qwt.from";

    private Nodes() {
    }

    public static Optional<AttributeProto> attr(NodeProto n, String name) {
        for (AttributeProto a : n.getAttributeList()) {
            if (a.getName().equals(name)) {
                return Optional.of(a);
            }
        }
        return Optional.empty();
    }

    public static long intAttr(NodeProto n, String name, long fallback) {
        return attr(n, name).map(AttributeProto::getI).orElse(fallback);
    }

    public static float floatAttr(NodeProto n, String name, float fallback) {
        return attr(n, name).map(AttributeProto::getF).orElse(fallback);
    }

    public static String stringAttr(NodeProto n, String name, String fallback) {
        return attr(n, name).map(a -> a.getS().toStringUtf8()).orElse(fallback);
    }

    public static List<Long> intsAttr(NodeProto n, String name) {
        return attr(n, name).map(AttributeProto::getIntsList).orElse(List.of());
    }

    public static AttributeProto intAttribute(String name, long v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
    }

    public static AttributeProto floatAttribute(String name, float v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(v).build();
    }

    public static AttributeProto intsAttribute(String name, long... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
        for (long x : v) {
            b.addInts(x);
        }
        return b.build();
    }

    public static AttributeProto stringAttribute(String name, String v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
                .setS(ByteString.copyFromUtf8(v)).build();
    }

    public static AttributeProto tensorAttribute(String name, TensorProto t) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.TENSOR).setT(t).build();
    }

    /** The node without the named attribute. */
    public static NodeProto withoutAttr(NodeProto n, String name) {
        NodeProto.Builder b = n.toBuilder().clearAttribute();
        for (AttributeProto a : n.getAttributeList()) {
            if (!a.getName().equals(name)) {
                b.addAttribute(a);
            }
        }
        return b.build();
    }

    /** The node with the named attribute set (replaced if present). */
    public static NodeProto withAttr(NodeProto n, AttributeProto attr) {
        return withoutAttr(n, attr.getName()).toBuilder().addAttribute(attr).build();
    }

    /** A default-domain node, tagged with the pass that created it. */
    public static NodeProto node(String opType, String name, List<String> inputs, List<String> outputs,
            String createdBy, AttributeProto... attrs) {
        NodeProto.Builder b = NodeProto.newBuilder().setOpType(opType).setName(name)
                .addAllInput(inputs).addAllOutput(outputs);
        for (AttributeProto a : attrs) {
            b.addAttribute(a);
        }
        if (createdBy != null) {
            b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(CREATED_BY).setValue(createdBy));
        }
        return b.build();
    }

    /** The value of the node's metadata_props entry {@code key}, or null. */
    public static String metadata(NodeProto n, String key) {
        for (StringStringEntryProto e : n.getMetadataPropsList()) {
            if (e.getKey().equals(key)) {
                return e.getValue();
            }
        }
        return null;
    }

    /** The node with the metadata_props entry {@code key} set to {@code value} (replaced if present). */
    public static NodeProto withMetadata(NodeProto n, String key, String value) {
        NodeProto.Builder b = n.toBuilder().clearMetadataProps();
        for (StringStringEntryProto e : n.getMetadataPropsList()) {
            if (!e.getKey().equals(key)) {
                b.addMetadataProps(e);
            }
        }
        return b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(key).setValue(value)).build();
    }

    public static String describe(NodeProto n) {
        return n.getOpType() + " node '" + n.getName() + "'";
    }
}
