package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * Tensor payloads kept outside the protobuf message, by ONNX's external-data convention: the
 * tensor keeps its name, type and dims, {@code data_location} is EXTERNAL, and its
 * {@code external_data} entries name the file ({@code location}, relative to the model's folder),
 * the {@code offset} and the {@code length} in bytes. Offsets are aligned to {@link #ALIGNMENT} so
 * that readers (ONNX Runtime among them) can memory-map each tensor.
 */
public final class ExternalData {
    /** Offsets in the data file are multiples of this (a page on every platform we run on). */
    public static final long ALIGNMENT = 4096;
    /** Tensors at least this big go to the data file when one is written (ONNX's own default). */
    public static final long DEFAULT_THRESHOLD = 1024;

    private ExternalData() {
    }

    /** When a saved model keeps its tensors in a data file next to it. */
    public enum Mode {
        /** Only when the model would not fit in one protobuf message (about 2 GB). */
        AUTO,
        /** Always (tensors of at least the threshold's size). */
        ALWAYS,
        /** Never: a model too big for one message is refused. */
        NEVER
    }

    /** How a model is saved: the mode and the smallest tensor moved out, in bytes. */
    public record Policy(Mode mode, long threshold) {
        public static final Policy DEFAULT = new Policy(Mode.AUTO, DEFAULT_THRESHOLD);

        public Policy {
            if (threshold < 0) {
                throw new QwtException("--external-data-threshold must be at least 0, not " + threshold);
            }
        }

        /** Parses the CLI's spelling (auto, always, never). */
        public static Mode mode(String s) {
            try {
                return Mode.valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new QwtException("--external-data must be auto, always or never, not '" + s + "'");
            }
        }
    }

    /** One payload moved out of the message, at its place in the data file. */
    public record Payload(TensorProto tensor, long offset) {
        public ByteString bytes() {
            return tensor.getRawData();
        }
    }

    /** The message with the moved tensors marked external, and their payloads in file order. */
    public record Split(ModelProto proto, List<Payload> payloads, long fileBytes) {
        /** Writes the payloads at their offsets; the last one ends the file at {@code fileBytes}. */
        public void writeTo(FileChannel ch) throws IOException {
            for (Payload p : payloads) {
                ByteBuffer b = p.bytes().asReadOnlyByteBuffer();
                long pos = p.offset();
                while (b.hasRemaining()) {
                    pos += ch.write(b, pos);
                }
            }
        }
    }

    /**
     * Moves the raw payload of every tensor that {@code moveOut} accepts out of the message.
     *
     * @param location the data file's name, written into each moved tensor
     * @param subgraphs whether tensors inside If/Loop/Scan bodies and Constant nodes move too
     *                  (ONNX Runtime's in-memory initializers only cover the main graph's initializers)
     */
    public static Split split(ModelProto model, Predicate<TensorProto> moveOut, String location, boolean subgraphs) {
        Splitter s = new Splitter(moveOut, location, subgraphs);
        GraphProto g = s.graph(model.getGraph());
        ModelProto proto = s.payloads.isEmpty() ? model : model.toBuilder().setGraph(g).build();
        return new Split(proto, List.copyOf(s.payloads), s.end);
    }

    /** Tensors whose payload sits in raw_data and is at least {@code bytes} long. */
    public static Predicate<TensorProto> rawAtLeast(long bytes) {
        return t -> t.hasRawData() && !Tensors.isExternal(t) && t.getRawData().size() >= bytes;
    }

    private static final class Splitter {
        final Predicate<TensorProto> moveOut;
        final String location;
        final boolean subgraphs;
        final List<Payload> payloads = new ArrayList<>();
        long end;

        Splitter(Predicate<TensorProto> moveOut, String location, boolean subgraphs) {
            this.moveOut = moveOut;
            this.location = location;
            this.subgraphs = subgraphs;
        }

        GraphProto graph(GraphProto g) {
            GraphProto.Builder b = null;
            for (int i = 0; i < g.getInitializerCount(); i++) {
                TensorProto t = g.getInitializer(i);
                if (moveOut.test(t)) {
                    if (b == null) {
                        b = g.toBuilder();
                    }
                    b.setInitializer(i, move(t));
                }
            }
            if (subgraphs) {
                for (int i = 0; i < g.getNodeCount(); i++) {
                    NodeProto n = node(g.getNode(i));
                    if (n != g.getNode(i)) {
                        if (b == null) {
                            b = g.toBuilder();
                        }
                        b.setNode(i, n);
                    }
                }
            }
            return b == null ? g : b.build();
        }

        /** The node with its tensor attributes moved out (the same object when nothing moved). */
        NodeProto node(NodeProto n) {
            NodeProto.Builder nb = null;
            for (int a = 0; a < n.getAttributeCount(); a++) {
                AttributeProto attr = n.getAttribute(a);
                AttributeProto.Builder ab = null;
                if (attr.hasT() && moveOut.test(attr.getT())) {
                    ab = attr.toBuilder().setT(move(attr.getT()));
                }
                for (int k = 0; k < attr.getTensorsCount(); k++) {
                    if (moveOut.test(attr.getTensors(k))) {
                        ab = ab == null ? attr.toBuilder() : ab;
                        ab.setTensors(k, move(attr.getTensors(k)));
                    }
                }
                if (attr.hasG()) {
                    GraphProto sg = graph(attr.getG());
                    if (sg != attr.getG()) {
                        ab = ab == null ? attr.toBuilder() : ab;
                        ab.setG(sg);
                    }
                }
                for (int k = 0; k < attr.getGraphsCount(); k++) {
                    GraphProto sg = graph(attr.getGraphs(k));
                    if (sg != attr.getGraphs(k)) {
                        ab = ab == null ? attr.toBuilder() : ab;
                        ab.setGraphs(k, sg);
                    }
                }
                if (ab != null) {
                    nb = nb == null ? n.toBuilder() : nb;
                    nb.setAttribute(a, ab);
                }
            }
            return nb == null ? n : nb.build();
        }

        TensorProto move(TensorProto t) {
            long offset = (end + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
            long length = t.getRawData().size();
            payloads.add(new Payload(t, offset));
            end = offset + length;
            return t.toBuilder().clearRawData().clearExternalData()
                    .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(entry("location", location))
                    .addExternalData(entry("offset", Long.toString(offset)))
                    .addExternalData(entry("length", Long.toString(length)))
                    .build();
        }

        private static StringStringEntryProto entry(String k, String v) {
            return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
        }
    }
}
