package dev.qwtonnx.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtSessions;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Saving with external data, loading it back (mapped), and ORT sessions over models too big for bytes. */
class ExternalDataTest {
    @TempDir
    Path tmp;

    private static final Map<String, HostTensor> MLP_INPUT =
            Map.of("x", OrtTestSupport.randomFloats(new Random(3), 1, 5, 32));

    private static Map<String, String> entries(TensorProto t) {
        Map<String, String> m = new HashMap<>();
        for (StringStringEntryProto e : t.getExternalDataList()) {
            m.put(e.getKey(), e.getValue());
        }
        return m;
    }

    @Test
    void alwaysMovesTensorsOverTheThresholdToAnAlignedDataFileThatOrtReads() throws IOException {
        Model model = TestModels.mlp(5);
        Path out = tmp.resolve("mlp.onnx");
        ModelIO.save(model, out, null, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 512));

        Path data = tmp.resolve("mlp.onnx.data");
        assertTrue(Files.isRegularFile(data));
        ModelProto written = ModelProto.parseFrom(Files.readAllBytes(out));
        int moved = 0;
        long dataBytes = Files.size(data);
        for (TensorProto t : written.getGraph().getInitializerList()) {
            TensorProto original = model.graph().getInitializerList().stream()
                    .filter(o -> o.getName().equals(t.getName())).findFirst().orElseThrow();
            if (original.getRawData().size() >= 512) {
                moved++;
                assertEquals(TensorProto.DataLocation.EXTERNAL, t.getDataLocation(), t.getName());
                assertFalse(t.hasRawData(), t.getName());
                Map<String, String> e = entries(t);
                assertEquals("mlp.onnx.data", e.get("location"));
                long offset = Long.parseLong(e.get("offset"));
                assertEquals(0, offset % ExternalData.ALIGNMENT, t.getName() + " offset " + offset);
                assertEquals(original.getRawData().size(), Long.parseLong(e.get("length")));
                assertTrue(offset + original.getRawData().size() <= dataBytes);
            } else {
                assertEquals(original, t, "a tensor under the threshold stays inline");
            }
        }
        assertEquals(3, moved, "w1, w2, w3 (biases are under 512 bytes)");
        assertTrue(Files.size(out) < 1024, "the .onnx keeps only the graph: " + Files.size(out));
        assertEquals(List.of(), temporaryFiles());

        // ORT reads the file pair itself and computes what the in-memory model computes.
        assertEquals(OrtTestSupport.run(model, MLP_INPUT).get("y").toFloats().length,
                OrtTestSupport.run(out, MLP_INPUT).get("y").toFloats().length);
        assertArrayEquals(OrtTestSupport.run(model, MLP_INPUT).get("y").toFloats(),
                OrtTestSupport.run(out, MLP_INPUT).get("y").toFloats());
        // And loading it back gives the same payloads.
        Model back = ModelIO.load(out);
        for (TensorProto t : model.graph().getInitializerList()) {
            TensorProto b = back.graph().getInitializerList().stream()
                    .filter(o -> o.getName().equals(t.getName())).findFirst().orElseThrow();
            assertFalse(Tensors.isExternal(b));
            assertEquals(t.getRawData(), b.getRawData(), t.getName());
        }
        assertEquals(Files.size(out) + dataBytes, ModelIO.fileBytes(out));
    }

    @Test
    void autoKeepsAModelThatFitsInOneFile() throws IOException {
        Model model = TestModels.mlp(5);
        Path out = tmp.resolve("mlp.onnx");
        ModelIO.save(model, out, null, ExternalData.Policy.DEFAULT);
        assertFalse(Files.exists(tmp.resolve("mlp.onnx.data")));
        assertArrayEquals(model.toBytes(), Files.readAllBytes(out));
    }

    @Test
    void largePayloadsAreMappedOnLoadAndSavedBackOut() throws IOException {
        Model model = wideMatMul(600); // one 1.44 MB weight: over the mapping threshold
        Path first = tmp.resolve("wide.onnx");
        ModelIO.save(model, first, null, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 1024));
        Model loaded = ModelIO.load(first);
        ByteString w = loaded.graph().getInitializer(0).getRawData();
        assertTrue(w.asReadOnlyByteBuffer().isDirect(), "a mapped payload is a direct buffer, not a heap copy");
        assertEquals(model.graph().getInitializer(0).getRawData(), w);

        Path second = tmp.resolve("wide2.onnx");
        ModelIO.save(loaded, second, first, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 1024));
        Map<String, HostTensor> in = Map.of("x", OrtTestSupport.randomFloats(new Random(1), 2, 600));
        assertArrayEquals(OrtTestSupport.run(model, in).get("y").toFloats(), OrtTestSupport.run(second, in).get("y").toFloats());
    }

    @Test
    void theInputsDataFileIsNeverOverwritten() throws IOException {
        // An input whose data file is named like the output's would be: in.onnx → out.onnx.data.
        Path out = tmp.resolve("out.onnx");
        ModelIO.save(TestModels.mlp(5), out, null, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 512));
        Path in = tmp.resolve("in.onnx");
        Files.move(out, in);
        byte[] before = Files.readAllBytes(tmp.resolve("out.onnx.data"));
        Model loaded = ModelIO.load(in);

        QwtException e = assertThrows(QwtException.class, () -> ModelIO.save(loaded, out, in,
                new ExternalData.Policy(ExternalData.Mode.ALWAYS, 512)));
        assertTrue(e.getMessage().contains("out.onnx.data") && e.getMessage().contains("refusing to overwrite"),
                e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(tmp.resolve("out.onnx.data")));
        assertFalse(Files.exists(out));
        assertEquals(List.of(), temporaryFiles());
    }

    @Test
    void aModelOver2GbIsMeasuredInLongsAndRefusedAsOneMessage() {
        // 33 initializers sharing one 64 MB payload: 2.1 GB serialized, 64 MB in memory.
        ByteString payload = ByteString.copyFrom(new byte[64 << 20]);
        GraphProto.Builder g = TestModels.mlp(5).graph().toBuilder();
        for (int i = 0; i < 33; i++) {
            g.addInitializer(TensorProto.newBuilder().setName("unused" + i).setDataType(TensorProto.DataType.FLOAT_VALUE)
                    .addDims(16 << 20).setRawData(payload));
        }
        Model big = TestModels.mlp(5).withGraph(g.build());
        assertTrue(big.serializedSize() > 33L * (64 << 20), "size " + big.serializedSize());
        assertFalse(big.fitsOneMessage());
        QwtException e = assertThrows(QwtException.class, big::toBytes);
        assertTrue(e.getMessage().contains("2 GB"), e.getMessage());

        Path out = tmp.resolve("big.onnx");
        e = assertThrows(QwtException.class, () -> ModelIO.save(big, out, null,
                new ExternalData.Policy(ExternalData.Mode.NEVER, 1024)));
        assertTrue(e.getMessage().contains("--external-data auto or always") && e.getMessage().contains("big.onnx"),
                e.getMessage());
        e = assertThrows(QwtException.class, () -> ModelIO.save(big, out, null,
                new ExternalData.Policy(ExternalData.Mode.AUTO, Long.MAX_VALUE)));
        assertTrue(e.getMessage().contains("lower --external-data-threshold"), e.getMessage());
        assertEquals(List.of(), temporaryFiles());
        assertFalse(Files.exists(out));
    }

    @Test
    void sessionsHandLargeInitializersOverInMemoryWithTheSameResults() throws OrtException {
        Map<Model, Map<String, HostTensor>> cases = Map.of(TestModels.mlp(5), MLP_INPUT,
                mappedWide(), Map.of("x", OrtTestSupport.randomFloats(new Random(1), 2, 600)));
        for (Map.Entry<Model, Map<String, HostTensor>> c : cases.entrySet()) {
            Model model = c.getKey();
            Map<String, HostTensor> in = c.getValue();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                    OrtSessions.Handle h = OrtSessions.create(model, opts, 0, 256)) {
                // The mapped weight is read from its own file; the others are handed over in memory.
                boolean mapped = model != cases.keySet().stream().filter(m -> m.graph().getInitializerCount() > 1)
                        .findFirst().orElseThrow();
                assertEquals(mapped ? 1 : 0, h.fromFiles());
                assertEquals(!mapped, h.inMemoryInitializers());
                // Same weights; only the summation order differs (no prepacking in memory-handed sessions).
                OrtTestSupport.assertClose(OrtTestSupport.run(model, in), OrtTestSupport.runSession(h.session(), in), 1e-5);
            }
        }
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                OrtSessions.Handle h = OrtSessions.create(TestModels.mlp(5), opts)) {
            assertFalse(h.inMemoryInitializers(), "a small model is created from bytes, as before");
        }
        // From 16 MB, by default: the weight skips the message (ORT need not parse it out), same results as from
        // the bytes (prepacking stays on below IN_MEMORY_FROM, so the summation order is the same too).
        Model mid = wideMatMul(2100);
        assertTrue(mid.serializedSize() >= OrtSessions.HAND_OVER_FROM);
        Map<String, HostTensor> in = Map.of("x", OrtTestSupport.randomFloats(new Random(3), 2, 2100));
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                OrtSessions.Handle h = OrtSessions.create(mid, opts)) {
            assertTrue(h.inMemoryInitializers());
            assertEquals(0, h.fromFiles());
            OrtTestSupport.assertClose(OrtTestSupport.run(mid, in), OrtTestSupport.runSession(h.session(), in), 1e-6);
        }
        // Small weights too (int8 weights are 64 KB to a few hundred KB): those of HAND_OVER_MIN_TENSOR or more go.
        ModelBuilder b = new ModelBuilder(9, 13).input("x", 1, 1, 256).output("y", 1, 1, 256);
        String x = "x";
        int layers = (int) (OrtSessions.HAND_OVER_FROM / (256 * 256 * 4)) + 2;
        for (int i = 0; i < layers; i++) {
            x = b.node("MatMul", List.of(x, b.randomInit("w" + i, 0.06, 256, 256)), i == layers - 1 ? "y" : "h" + i);
        }
        b.node("Add", List.of("h0", b.randomInit("small", 0.1, 256)), "unused");
        Model many = b.build();
        assertTrue(many.serializedSize() >= OrtSessions.HAND_OVER_FROM);
        Map<String, HostTensor> in256 = Map.of("x", OrtTestSupport.randomFloats(new Random(4), 1, 256));
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                OrtSessions.Handle h = OrtSessions.create(many, opts)) {
            assertEquals(layers, h.borrowed().size(), "every 256 KB weight, not the 1 KB one");
            OrtTestSupport.assertClose(OrtTestSupport.run(many, in256), OrtTestSupport.runSession(h.session(), in256), 1e-5);
        }
    }

    /**
     * A session over a model whose weight is still the payload mapped on load reads it from the
     * model's own data file, where ORT maps it: the weight is not copied into anonymous memory
     * (checked against the same bytes handed over in memory, which ORT copies), and the results
     * are the same as those of the in-memory path.
     */
    @Test
    void sessionsReadMappedWeightsFromTheirOwnFileWithoutACopy() throws OrtException {
        int n = 4096; // a 64 MB weight
        long weightMb = (long) n * n * 4 >> 20;
        Path p = tmp.resolve("wide.onnx");
        ModelIO.save(wideMatMul(n), p, null, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 1024));
        Model mapped = ModelIO.load(p);
        TensorProto w = mapped.graph().getInitializer(0);
        // The same mapped bytes, but a ByteString the loader did not hand out: handed over in memory.
        Model unknown = mapped.withGraph(mapped.graph().toBuilder().setInitializer(0, w.toBuilder()
                .setRawData(com.google.protobuf.UnsafeByteOperations.unsafeWrap(w.getRawData().asReadOnlyByteBuffer())))
                .build());
        Map<String, HostTensor> in = Map.of("x", OrtTestSupport.randomFloats(new Random(5), 3, n));

        Map<String, HostTensor> fromFile = null;
        long fileAnonMb = Long.MAX_VALUE;
        // The file-referencing session first: memory freed by an earlier session could hide a copy. A copy
        // adds the whole weight every time; what else the JVM allocates meanwhile (other tests' threads, the
        // JIT, the heap growing) comes and goes, so the least of three sessions is the session's own cost.
        for (int attempt = 0; attempt < 3 && fileAnonMb >= weightMb / 4; attempt++) {
            long before = anonymousMb();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                    OrtSessions.Handle h = OrtSessions.create(mapped, opts, 0, 1 << 20)) {
                assertEquals(1, h.fromFiles());
                assertFalse(h.inMemoryInitializers());
                fromFile = OrtTestSupport.runSession(h.session(), in);
                fileAnonMb = Math.min(fileAnonMb, anonymousMb() - before);
            }
        }
        Map<String, HostTensor> inMemory;
        long memoryAnonMb;
        long before = anonymousMb();
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
                OrtSessions.Handle h = OrtSessions.create(unknown, opts, 0, 1 << 20)) {
            assertEquals(0, h.fromFiles());
            assertTrue(h.inMemoryInitializers());
            inMemory = OrtTestSupport.runSession(h.session(), in);
            memoryAnonMb = anonymousMb() - before;
        }
        assertArrayEquals(inMemory.get("y").toFloats(), fromFile.get("y").toFloats());
        OrtTestSupport.assertClose(OrtTestSupport.run(wideMatMul(n), in), fromFile, 1e-5);
        if (before >= 0) { // Linux: /proc/self/status
            assertTrue(memoryAnonMb > weightMb * 3 / 4, "the in-memory path copies the weight: +" + memoryAnonMb
                    + " MB");
            assertTrue(fileAnonMb < weightMb / 4, "the file-referencing session copied the " + weightMb
                    + " MB weight: +" + fileAnonMb + " MB anonymous memory");
        }
    }

    /** The process's anonymous resident memory (RssAnon) in MB, or -1 where /proc is missing. */
    private static long anonymousMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("RssAnon:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) >> 10;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // Not Linux.
        }
        return -1;
    }

    /** The wide model saved with external data and loaded back: its weight is a mapped buffer. */
    private Model mappedWide() {
        Path p = tmp.resolve("mapped-wide.onnx");
        ModelIO.save(wideMatMul(600), p, null, new ExternalData.Policy(ExternalData.Mode.ALWAYS, 1024));
        return ModelIO.load(p);
    }

    /** y = x · W with W of shape [n, n]. */
    static Model wideMatMul(int n) {
        ModelBuilder b = new ModelBuilder(9, 13).input("x", 1, -1, n).output("y", 1, -1, n);
        b.node("MatMul", List.of("x", b.randomInit("w", 0.05, n, n)), "y");
        return b.build();
    }

    private List<Path> temporaryFiles() {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
