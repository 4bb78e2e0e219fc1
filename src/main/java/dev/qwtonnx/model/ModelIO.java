package dev.qwtonnx.model;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
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
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Loading and saving .onnx files, with tensors stored as external data next to the model. External
 * payloads of 1 MB or more are memory-mapped on load, so models bigger than the heap (or than
 * protobuf's 2 GB) can be read; they are written back out as external data on save.
 */
public final class ModelIO {
    /** External payloads at least this big are memory-mapped rather than read into the heap. */
    static final long MAP_AT_LEAST = 1L << 20;

    /** The external data files of every model this process has loaded or saved, by the model's real path. */
    private static final Map<Path, Set<Path>> DATA_FILES = new ConcurrentHashMap<>();

    /**
     * Every external data file this process has read (real paths). Saving never replaces one: the
     * model it belongs to would lose its weights, and mapped payloads may still point into it.
     */
    private static final Set<Path> DATA_FILES_READ = ConcurrentHashMap.newKeySet();

    private ModelIO() {
    }

    /**
     * Loads a model and resolves every tensor kept as external data into its raw_data (large ones
     * memory-mapped; paths must stay in the model's folder).
     */
    public static Model load(Path path) {
        if (!Files.exists(path)) {
            throw new QwtException("model file not found: " + path);
        }
        if (Files.isDirectory(path)) {
            throw new QwtException("model path is a directory, not an .onnx file: " + path);
        }
        ModelProto proto;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            if (ch.size() > Integer.MAX_VALUE) {
                try (InputStream in = Files.newInputStream(path)) {
                    proto = parse(CodedInputStream.newInstance(in), path.toString());
                }
            } else {
                // Mapped and parsed with aliasing: tensor payloads are slices of the mapped file, not heap
                // copies. The JVM heap does not hold the weights, and ORT sessions are handed them without a
                // copy into direct memory for each session.
                // (Through a ByteString: protobuf aliases only buffers it is told are immutable.)
                CodedInputStream cis = UnsafeByteOperations
                        .unsafeWrap(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size())).newCodedInput();
                cis.enableAliasing(true);
                proto = parse(cis, path.toString());
            }
        } catch (AccessDeniedException e) {
            throw new QwtException("cannot read model file (permission denied): " + path);
        } catch (IOException e) {
            throw new QwtException("cannot read model file " + path + ": " + e.getMessage());
        }
        Path dir = path.toAbsolutePath().getParent();
        Set<Path> dataFiles = new LinkedHashSet<>();
        Model model = new Model(proto.toBuilder().setGraph(inlineExternal(proto.getGraph(), dir, dataFiles)).build());
        remember(path, dataFiles);
        DATA_FILES_READ.addAll(dataFiles);
        return model;
    }

    /** Parses model bytes; a file that is not an ONNX model gets a one-line error. */
    public static Model fromBytes(byte[] bytes, String origin) {
        try {
            return new Model(parse(CodedInputStream.newInstance(bytes), origin));
        } catch (IOException e) {
            throw new QwtException("cannot read model " + origin + ": " + e.getMessage());
        }
    }

    private static ModelProto parse(CodedInputStream cis, String origin) throws IOException {
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

    private static GraphProto inlineExternal(GraphProto g, Path dir, Set<Path> dataFiles) {
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getInitializerCount(); i++) {
            TensorProto t = b.getInitializer(i);
            if (Tensors.isExternal(t)) {
                b.setInitializer(i, readExternal(t, dir, dataFiles));
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
                    ab.setT(readExternal(attr.getT(), dir, dataFiles));
                    changed = true;
                }
                if (attr.hasG()) {
                    ab.setG(inlineExternal(attr.getG(), dir, dataFiles));
                    changed = true;
                }
                for (int k = 0; k < ab.getGraphsCount(); k++) {
                    ab.setGraphs(k, inlineExternal(ab.getGraphs(k), dir, dataFiles));
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

    private static TensorProto readExternal(TensorProto t, Path dir, Set<Path> dataFiles) {
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
            ByteString payload;
            if (length >= MAP_AT_LEAST) {
                // Mapped, not copied: the page cache holds the weights once, and the JVM heap not at all.
                payload = UnsafeByteOperations.unsafeWrap(ch.map(FileChannel.MapMode.READ_ONLY, offset, length));
                // Remembered so that ORT sessions can read these bytes from the file rather than get a copy.
                MappedPayloads.record(payload, new MappedPayloads.Source(file.toRealPath(), offset, length));
            } else {
                ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(length));
                while (buf.hasRemaining()) {
                    if (ch.read(buf, offset + buf.position()) < 0) {
                        throw new QwtException("external file ended early: " + file);
                    }
                }
                buf.flip();
                payload = UnsafeByteOperations.unsafeWrap(buf);
            }
            dataFiles.add(file.toRealPath());
            return t.toBuilder().clearExternalData().clearDataLocation().setRawData(payload).build();
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
     * target. Refuses to write over {@code input} (when given). Tensors go to a data file when the
     * model needs one (see {@link ExternalData.Policy#DEFAULT}).
     */
    public static void save(Model model, Path out, Path input) {
        save(model, out, input, ExternalData.Policy.DEFAULT);
    }

    /**
     * Writes the model atomically, with tensors of at least {@code policy.threshold()} bytes in
     * {@code <out>.data} next to it when the policy asks for external data. The data file is written
     * (atomically as well) before the model, so a model file never names a partial data file.
     */
    public static void save(Model model, Path out, Path input, ExternalData.Policy policy) {
        Path target = out.toAbsolutePath().normalize();
        if (input != null && isSameFile(input, target)) {
            throw new QwtException("output path is the input model; refusing to overwrite it: " + out);
        }
        boolean external = switch (policy.mode()) {
            case ALWAYS -> true;
            case NEVER -> false;
            case AUTO -> !model.fitsOneMessage();
        };
        if (!external) {
            if (!model.fitsOneMessage()) {
                throw new QwtException("the model is " + model.serializedSize() + " bytes, over protobuf's 2 GB limit "
                        + "for one file; save it with --external-data auto or always: " + out);
            }
            writeStreamed(out, model);
            remember(out, Set.of());
            return;
        }
        String dataName = target.getFileName() + ".data";
        Path dataFile = target.resolveSibling(dataName);
        refuseInputData(dataFile, input);
        ExternalData.Split split = ExternalData.split(model.proto(), ExternalData.rawAtLeast(policy.threshold()),
                dataName, true);
        Model small = new Model(split.proto());
        if (!small.fitsOneMessage()) {
            throw new QwtException("with tensors of at least " + policy.threshold() + " bytes stored externally the model "
                    + "is still " + small.serializedSize() + " bytes, over protobuf's 2 GB limit; lower "
                    + "--external-data-threshold: " + out);
        }
        if (!split.payloads().isEmpty()) {
            AtomicWrite.write(dataFile, "external data", split::writeTo);
        }
        AtomicWrite.write(out, small.toBytes(), "output");
        remember(out, split.payloads().isEmpty() ? Set.of() : Set.of(dataFile));
    }

    /**
     * Writes the (one-message) model through a buffered stream rather than from a byte array of the
     * whole: a large int8 output would otherwise be one more copy of the model in the heap.
     * The bytes are the same as {@link Model#toBytes()}'s.
     */
    private static void writeStreamed(Path out, Model model) {
        AtomicWrite.write(out, "output", ch -> {
            OutputStream os = java.nio.channels.Channels.newOutputStream(ch);
            com.google.protobuf.CodedOutputStream cos = com.google.protobuf.CodedOutputStream.newInstance(os, 1 << 16);
            model.proto().writeTo(cos);
            cos.flush();
            os.flush();
        });
    }

    /** Records the data files of a model just loaded or written (none: forgets earlier ones). */
    private static void remember(Path model, Set<Path> dataFiles) {
        try {
            Set<Path> real = new LinkedHashSet<>();
            for (Path f : dataFiles) {
                real.add(f.toRealPath());
            }
            DATA_FILES.put(model.toRealPath(), Set.copyOf(real));
        } catch (IOException e) {
            // Only the sizes in reports use this; the files were just read or written.
        }
    }

    /**
     * The bytes a model takes on disk: its file and the external data files it was loaded from or
     * saved with in this process.
     */
    public static long fileBytes(Path model) throws IOException {
        long total = Files.size(model);
        for (Path f : DATA_FILES.getOrDefault(model.toRealPath(), Set.of())) {
            total += Files.size(f);
        }
        return total;
    }

    /** Refuses a data file that is the input model or one of the data files read in this process. */
    private static void refuseInputData(Path dataFile, Path input) {
        if (input != null && isSameFile(input, dataFile)) {
            throw new QwtException("the external data file would overwrite the input model: " + dataFile);
        }
        if (!Files.exists(dataFile)) {
            return;
        }
        for (Path read : DATA_FILES_READ) {
            if (isSameFile(read, dataFile)) {
                throw new QwtException("the external data file " + dataFile + " holds the weights of a model that was "
                        + "loaded (the input?); refusing to overwrite it: choose another output name");
            }
        }
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
