package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/** Loading and saving .onnx files, with tensors stored as external data next to the model. */
public final class ModelIO {
    private ModelIO() {
    }

    /** Loads a model and inlines every tensor kept as external data (paths must stay in its folder). */
    public static Model load(Path path) {
        if (!Files.exists(path)) {
            throw new QwtException("model file not found: " + path);
        }
        if (Files.isDirectory(path)) {
            throw new QwtException("model path is a directory, not an .onnx file: " + path);
        }
        ModelProto proto;
        try (InputStream in = Files.newInputStream(path)) {
            proto = parse(in, path.toString());
        } catch (AccessDeniedException e) {
            throw new QwtException("cannot read model file (permission denied): " + path);
        } catch (IOException e) {
            throw new QwtException("cannot read model file " + path + ": " + e.getMessage());
        }
        Path dir = path.toAbsolutePath().getParent();
        return new Model(proto.toBuilder().setGraph(inlineExternal(proto.getGraph(), dir)).build());
    }

    /** Parses model bytes; a file that is not an ONNX model gets a one-line error. */
    public static Model fromBytes(byte[] bytes, String origin) {
        try {
            return new Model(parse(new java.io.ByteArrayInputStream(bytes), origin));
        } catch (IOException e) {
            throw new QwtException("cannot read model " + origin + ": " + e.getMessage());
        }
    }

    private static ModelProto parse(InputStream in, String origin) throws IOException {
        CodedInputStream cis = CodedInputStream.newInstance(in);
        cis.setSizeLimit(Integer.MAX_VALUE);
        cis.setRecursionLimit(200);
        ModelProto proto;
        try {
            proto = ModelProto.parseFrom(cis);
        } catch (InvalidProtocolBufferException e) {
            throw new QwtException("not an ONNX model (the file is not a valid ModelProto): " + origin);
        }
        if (!proto.hasGraph() || proto.getOpsetImportCount() == 0 || !proto.hasIrVersion()) {
            throw new QwtException("not an ONNX model (no graph, IR version or opset import): " + origin);
        }
        return proto;
    }

    private static GraphProto inlineExternal(GraphProto g, Path dir) {
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getInitializerCount(); i++) {
            TensorProto t = b.getInitializer(i);
            if (Tensors.isExternal(t)) {
                b.setInitializer(i, readExternal(t, dir));
            }
        }
        for (int i = 0; i < b.getNodeCount(); i++) {
            NodeProto n = b.getNode(i);
            boolean touched = false;
            NodeProto.Builder nb = n.toBuilder();
            for (int a = 0; a < nb.getAttributeCount(); a++) {
                AttributeProto attr = nb.getAttribute(a);
                AttributeProto.Builder ab = attr.toBuilder();
                boolean changed = false;
                if (attr.hasT() && Tensors.isExternal(attr.getT())) {
                    ab.setT(readExternal(attr.getT(), dir));
                    changed = true;
                }
                if (attr.hasG()) {
                    ab.setG(inlineExternal(attr.getG(), dir));
                    changed = true;
                }
                for (int k = 0; k < ab.getGraphsCount(); k++) {
                    ab.setGraphs(k, inlineExternal(ab.getGraphs(k), dir));
                    changed = true;
                }
                if (changed) {
                    nb.setAttribute(a, ab);
                    touched = true;
                }
            }
            if (touched) {
                b.setNode(i, nb);
            }
        }
        return b.build();
    }

    private static TensorProto readExternal(TensorProto t, Path dir) {
        String location = null;
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = parseLong(e.getValue(), t, "offset");
                case "length" -> length = parseLong(e.getValue(), t, "length");
                default -> { }
            }
        }
        if (location == null || location.isEmpty()) {
            throw new QwtException("tensor '" + t.getName() + "' is external but names no location");
        }
        Path file = insideFolder(t, location, dir);
        DataType type = DataType.of(t.getDataType());
        long expected;
        try {
            expected = Math.multiplyExact(HostTensor.numel(Tensors.dims(t)), (long) type.bytes);
        } catch (ArithmeticException e) {
            throw new QwtException("tensor '" + t.getName() + "' declares dims " + t.getDimsList() + " whose size overflows");
        }
        if (length < 0) {
            length = expected;
        }
        if (length != expected) {
            throw new QwtException("tensor '" + t.getName() + "' has external length " + length + " but its dims need "
                    + expected + " bytes");
        }
        if (length > Integer.MAX_VALUE - 8) {
            throw new QwtException("tensor '" + t.getName() + "' has " + length
                    + " bytes of external data; tensors of 2 GB or more are not supported");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (offset < 0 || offset + length > ch.size()) {
                throw new QwtException("tensor '" + t.getName() + "' reads past the end of external file " + file);
            }
            ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(length));
            while (buf.hasRemaining()) {
                if (ch.read(buf, offset + buf.position()) < 0) {
                    throw new QwtException("external file ended early: " + file);
                }
            }
            buf.flip();
            return t.toBuilder().clearExternalData().clearDataLocation().setRawData(ByteString.copyFrom(buf)).build();
        } catch (NoSuchFileException e) {
            throw new QwtException("external data file of tensor '" + t.getName() + "' not found: " + file);
        } catch (IOException e) {
            throw new QwtException("cannot read external data " + file + ": " + e.getMessage());
        }
    }

    /**
     * The external-data file of a tensor, refused (before anything is opened) unless it is a relative
     * path that stays inside the model's folder, also after following symbolic links.
     */
    private static Path insideFolder(TensorProto t, String location, Path dir) {
        String refused = "tensor '" + t.getName() + "' refers to external data outside the model's folder: " + location;
        Path rel;
        try {
            rel = Path.of(location);
        } catch (java.nio.file.InvalidPathException e) {
            throw new QwtException("tensor '" + t.getName() + "' has an invalid external-data location: "
                    + location.replace('\0', '?'));
        }
        Path file = dir.resolve(rel).normalize();
        if (rel.isAbsolute() || !file.startsWith(dir.normalize())) {
            throw new QwtException(refused);
        }
        try {
            if (Files.exists(file) && !file.toRealPath().startsWith(dir.toRealPath())) {
                throw new QwtException(refused + " (through a symbolic link)");
            }
        } catch (IOException e) {
            throw new QwtException("cannot resolve external data " + file + ": " + e.getMessage());
        }
        return file;
    }

    private static long parseLong(String v, TensorProto t, String key) {
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new QwtException("tensor '" + t.getName() + "' has a bad external-data " + key + ": " + v);
        }
    }

    /**
     * Writes the model atomically: to a temporary file in the target folder, then renamed over the
     * target. Refuses to write over {@code input} (when given).
     */
    public static void save(Model model, Path out, Path input) {
        Path target = out.toAbsolutePath().normalize();
        if (input != null && isSameFile(input, target)) {
            throw new QwtException("output path is the input model; refusing to overwrite it: " + out);
        }
        AtomicWrite.write(out, model.toBytes(), "output");
    }

    private static boolean isSameFile(Path a, Path b) {
        try {
            if (Files.exists(a) && Files.exists(b)) {
                return Files.isSameFile(a, b);
            }
        } catch (IOException ignored) {
            // Fall through to the path comparison.
        }
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }
}
