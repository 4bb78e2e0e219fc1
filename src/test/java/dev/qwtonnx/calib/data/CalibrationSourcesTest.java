package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static dev.qwtonnx.calib.data.DataTestSupport.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.onnx.TensorProto;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationSourcesTest {
    @TempDir
    Path tmp;

    /** A BERT-like model: batch 1, any sequence length. */
    static final List<InputSpec> BERT = List.of(new InputSpec("input_ids", DataType.INT64, new long[] {1, -1}),
            new InputSpec("attention_mask", DataType.INT64, new long[] {1, -1}));
    /** An image model with a fixed input. */
    static final List<InputSpec> IMAGE = List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 3, 4, 4}));

    static HostTensor ids(int len, long start) {
        long[] v = new long[len];
        for (int i = 0; i < len; i++) {
            v[i] = start + i;
        }
        return HostTensor.ofLongs(new long[] {1, len}, v);
    }

    static HostTensor image(float fill) {
        float[] v = new float[48];
        java.util.Arrays.fill(v, fill);
        return HostTensor.ofFloats(new long[] {1, 3, 4, 4}, v);
    }

    static List<Sample> all(CalibrationSource s) {
        List<Sample> out = new ArrayList<>();
        s.forEach(out::add);
        return out;
    }

    private void writeNpy(Path file, HostTensor t) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            Npy.write(out, t);
        }
    }

    // ---- reading each kind of folder ----

    @Test
    void npzFolderWithVariableLengthsAndExtraArrays() {
        for (int i = 0; i < 3; i++) {
            Map<String, HostTensor> arrays = new LinkedHashMap<>();
            arrays.put("labels", ids(1, 0)); // not a model input: dropped
            arrays.put("attention_mask", ids(5 + i * 4, 1));
            arrays.put("input_ids", ids(5 + i * 4, 100));
            Npz.write(tmp.resolve("s" + i + ".npz"), arrays);
        }
        CalibrationSource src = CalibrationSources.open(tmp, BERT);
        assertEquals(3, src.size());
        List<Long> lengths = new ArrayList<>();
        for (Sample s : src) {
            assertEquals(List.of("input_ids", "attention_mask"), List.copyOf(s.inputs().keySet()), "model input order");
            lengths.add(s.inputs().get("input_ids").shape()[1]);
        }
        assertEquals(List.of(5L, 9L, 13L), lengths);
        assertEquals(List.of(5L, 9L, 13L), all(src).stream().map(s -> s.inputs().get("input_ids").shape()[1]).toList(),
                "re-iterable");
    }

    @Test
    void samplesComeInFileNameOrderAndHiddenFilesAreIgnored() throws IOException {
        for (String n : List.of("b", "a", "c10", "c2")) {
            Npz.write(tmp.resolve(n + ".npz"), Map.of("x", image(n.length())));
        }
        Files.write(tmp.resolve(".DS_Store"), new byte[] {0});
        Files.write(tmp.resolve("._a.npz"), new byte[] {0}); // macOS resource fork: not an archive
        Files.writeString(tmp.resolve("README.txt"), "calibration images");
        List<String> names = all(CalibrationSources.open(tmp, IMAGE)).stream()
                .map(s -> Path.of(s.id()).getFileName().toString()).toList();
        assertEquals(List.of("a.npz", "b.npz", "c10.npz", "c2.npz"), names);
    }

    @Test
    void readingIsLazy() {
        Npz.write(tmp.resolve("a.npz"), Map.of("x", image(1)));
        Npz.write(tmp.resolve("b.npz"), Map.of("x", image(2)));
        CalibrationSource src = CalibrationSources.open(tmp, IMAGE);
        Npz.write(tmp.resolve("b.npz"), Map.of("x", image(7))); // changed after open: read when iterated
        Iterator<Sample> it = src.iterator();
        assertEquals(1f, it.next().inputs().get("x").toFloats()[0]);
        assertEquals(7f, it.next().inputs().get("x").toFloats()[0]);
    }

    @Test
    void testDataSetsByNameAndByPosition() throws IOException {
        Path a = Files.createDirectories(tmp.resolve("test_data_set_0"));
        Files.write(a.resolve("input_0.pb"), ids(4, 7).toProto("").toByteArray());
        Files.write(a.resolve("input_1.pb"), ids(4, 1).toProto("").toByteArray());
        Path b = Files.createDirectories(tmp.resolve("test_data_set_1"));
        Files.write(b.resolve("input_0.pb"), ids(6, 1).toProto("attention_mask").toByteArray());
        Files.write(b.resolve("input_1.pb"), ids(6, 9).toProto("input_ids").toByteArray());
        Files.write(b.resolve("output_0.pb"), HostTensor.ofFloats(new long[] {1}, new float[] {Float.NaN})
                .toProto("logits").toByteArray()); // outputs are not read
        List<Sample> samples = all(CalibrationSources.open(tmp, BERT));
        assertEquals(2, samples.size());
        assertEquals(a.toString(), samples.get(0).id());
        assertArrayEquals(new long[] {7, 8, 9, 10}, samples.get(0).inputs().get("input_ids").toLongs());
        assertArrayEquals(new long[] {1, 2, 3, 4}, samples.get(0).inputs().get("attention_mask").toLongs());
        assertEquals(9, samples.get(1).inputs().get("input_ids").toLongs()[0]);
        assertEquals(1, samples.get(1).inputs().get("attention_mask").toLongs()[0]);
        assertEquals(6, samples.get(1).inputs().get("input_ids").shape()[1]);
    }

    @Test
    void testDataSetWrittenByOnnx() {
        // input_0.pb is unnamed with int64_data; input_1.pb is named attention_mask with raw_data.
        List<Sample> samples = all(CalibrationSources.open(resource("tds"), BERT));
        assertEquals(1, samples.size());
        assertArrayEquals(new long[] {101, 7592, 102}, samples.get(0).inputs().get("input_ids").toLongs());
        assertArrayEquals(new long[] {1, 1, 0}, samples.get(0).inputs().get("attention_mask").toLongs());
    }

    @Test
    void npyFolderIsOneSample() throws IOException {
        writeNpy(tmp.resolve("input_ids.npy"), ids(3, 2));
        writeNpy(tmp.resolve("attention_mask.npy"), ids(3, 1));
        writeNpy(tmp.resolve("token_type_ids.npy"), ids(3, 0)); // not a model input: ignored
        List<Sample> samples = all(CalibrationSources.open(tmp, BERT));
        assertEquals(1, samples.size());
        assertEquals(Set.of("input_ids", "attention_mask"), samples.get(0).inputs().keySet());
        assertArrayEquals(new long[] {2, 3, 4}, samples.get(0).inputs().get("input_ids").toLongs());
    }

    @Test
    void numpyWrittenArchivesInAFolder() throws IOException {
        Files.copy(resource("npz/stored.npz"), tmp.resolve("a.npz"));
        Files.copy(resource("npz/deflated.npz"), tmp.resolve("b.npz"));
        List<InputSpec> specs = List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3}),
                new InputSpec("ids", DataType.INT64, null)); // a model input without a declared shape
        assertEquals(2, all(CalibrationSources.open(tmp, specs)).size());
    }

    @Test
    void dynamicDimsAcceptAnySizeAndUndeclaredShapesAnyRank() throws IOException {
        List<InputSpec> dynamic = List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3, -1, -1}));
        Npz.write(tmp.resolve("a.npz"), Map.of("x", HostTensor.ofFloats(new long[] {2, 3, 1, 2}, new float[12])));
        Npz.write(tmp.resolve("b.npz"), Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 5, 1}, new float[15])));
        assertEquals(2, all(CalibrationSources.open(tmp, dynamic)).size());
        List<InputSpec> anyShape = List.of(new InputSpec("x", DataType.FLOAT, null));
        assertEquals(2, all(CalibrationSources.open(tmp, anyShape)).size());
    }

    // ---- user errors: one line, naming the file and the input ----

    private QwtException openError(Map<String, HostTensor> arrays, List<InputSpec> specs) {
        Npz.write(tmp.resolve("bad.npz"), arrays);
        return assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, specs));
    }

    @Test
    void missingInput() {
        QwtException e = openError(Map.of("y", image(0)), IMAGE);
        assertOneLine(e, "bad.npz: ", "model input 'x'", "found [y]");
    }

    /** np.savez(file, a, b) names its arrays arr_0, arr_1: one for each input, they are the inputs in order. */
    @Test
    void unnamedNpzArraysAreTheInputsInOrder() throws IOException {
        Npz.write(tmp.resolve("a.npz"), Map.of("arr_0", image(2)));
        Sample one = all(CalibrationSources.open(tmp, IMAGE)).get(0);
        assertEquals(List.of("x"), List.copyOf(one.inputs().keySet()));
        assertEquals(2f, one.inputs().get("x").toFloats()[5]);
        Path two = Files.createDirectories(tmp.resolve("two"));
        Npz.write(two.resolve("a.npz"), Map.of("arr_0", ids(3, 7), "arr_1", ids(3, 1)));
        Sample s = all(CalibrationSources.open(two, BERT)).get(0);
        assertArrayEquals(new long[] {7, 8, 9}, s.inputs().get("input_ids").toLongs());
        assertArrayEquals(new long[] {1, 2, 3}, s.inputs().get("attention_mask").toLongs());
    }

    @Test
    void unnamedNpzArraysOfAnotherCountGetAHint() throws IOException {
        Npz.write(tmp.resolve("bad.npz"), Map.of("arr_0", ids(3, 0)));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)), "bad.npz: ",
                "'input_ids'", "1 for 2 inputs", "np.savez(file, <input>=array");
    }

    /** One file of the whole set, stacked along a first axis the model fixes at 1: a sample per row. */
    @Test
    void aStackedFileIsASamplePerRow() throws IOException {
        float[] v = new float[3 * 48];
        for (int i = 0; i < v.length; i++) {
            v[i] = i / 48;
        }
        Npz.write(tmp.resolve("all.npz"), Map.of("x", HostTensor.ofFloats(new long[] {3, 3, 4, 4}, v)));
        List<Sample> rows = all(CalibrationSources.open(tmp, IMAGE));
        assertEquals(3, rows.size());
        assertArrayEquals(new long[] {1, 3, 4, 4}, rows.get(2).inputs().get("x").shape());
        assertEquals(2f, rows.get(2).inputs().get("x").toFloats()[47]);
        assertEquals(tmp.resolve("all.npz") + "#1", rows.get(1).id());
        Path text = Files.createDirectories(tmp.resolve("text"));
        long[] ids = new long[8];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i;
        }
        writeNpy(text.resolve("input_ids.npy"), HostTensor.ofLongs(new long[] {4, 2}, ids));
        writeNpy(text.resolve("attention_mask.npy"), HostTensor.ofLongs(new long[] {4, 2}, new long[8]));
        List<Sample> sentences = all(CalibrationSources.open(text, BERT));
        assertEquals(4, sentences.size());
        assertArrayEquals(new long[] {6, 7}, sentences.get(3).inputs().get("input_ids").toLongs());
        // Rows that differ between inputs are no stack: the model's batch of 1 is said to be broken.
        writeNpy(text.resolve("attention_mask.npy"), HostTensor.ofLongs(new long[] {2, 4}, new long[8]));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(text, BERT)), "dimension 0 must be 1");
    }

    /** A model of one input whose name no file bears: each .npy file is a sample, in file-name order. */
    @Test
    void aNpyFilePerSampleForAOneInputModel() throws IOException {
        writeNpy(tmp.resolve("s0.npy"), image(0));
        writeNpy(tmp.resolve("s1.npy"), image(1));
        List<Sample> samples = all(CalibrationSources.open(tmp, IMAGE));
        assertEquals(2, samples.size());
        assertEquals(1f, samples.get(1).inputs().get("x").toFloats()[0]);
        assertEquals(tmp.resolve("s1.npy").toString(), samples.get(1).id());
        // A file named by the input makes the folder one sample, <input>.npy, the other files dropped.
        writeNpy(tmp.resolve("x.npy"), image(3));
        List<Sample> named = all(CalibrationSources.open(tmp, IMAGE));
        assertEquals(1, named.size());
        assertEquals(3f, named.get(0).inputs().get("x").toFloats()[0]);
    }

    @Test
    void wrongDtype() {
        QwtException e = openError(Map.of("x", HostTensor.ofLongs(new long[] {1, 3, 4, 4}, new long[48])), IMAGE);
        assertOneLine(e, "bad.npz: ", "input 'x' is INT64 but the model takes FLOAT");
    }

    @Test
    void wrongRank() {
        QwtException e = openError(Map.of("x", HostTensor.ofFloats(new long[] {3, 4, 4}, new float[48])), IMAGE);
        assertOneLine(e, "bad.npz: ", "input 'x' has rank 3 [3, 4, 4] but the model takes rank 4 [1, 3, 4, 4]");
    }

    @Test
    void wrongFixedDim() {
        QwtException e = openError(Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 4, 5}, new float[60])), IMAGE);
        assertOneLine(e, "bad.npz: ", "input 'x' has shape [1, 3, 4, 5]", "dimension 3 must be 4");
        e = assertThrows(QwtException.class, () -> CalibrationSources.open(tmp,
                List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3, 4, 4}))));
        assertOneLine(e, "takes [?, 3, 4, 4]");
    }

    @Test
    void nanAndInfinity() {
        float[] v = new float[48];
        v[7] = Float.NaN;
        QwtException e = openError(Map.of("x", HostTensor.ofFloats(new long[] {1, 3, 4, 4}, v)), IMAGE);
        assertOneLine(e, "bad.npz: ", "input 'x' has NaN or infinity at index [0, 0, 1, 3]");

        ByteBuffer d = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(1e300).putDouble(
                Double.NEGATIVE_INFINITY);
        e = openError(Map.of("x", new HostTensor(DataType.DOUBLE, new long[] {2}, d.flip())),
                List.of(new InputSpec("x", DataType.DOUBLE, new long[] {2})));
        assertOneLine(e, "bad.npz: ", "at index [1]"); // 1e300 is finite in double

        ByteBuffer h = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 0x3c00)
                .putShort((short) 0x7c00); // 1.0, +inf in float16
        e = openError(Map.of("x", new HostTensor(DataType.FLOAT16, new long[] {2}, h.flip())),
                List.of(new InputSpec("x", DataType.FLOAT16, new long[] {2})));
        assertOneLine(e, "bad.npz: ", "at index [1]");
    }

    @Test
    void aBadSampleAfterTheFirstFailsAtOpen() {
        Npz.write(tmp.resolve("a.npz"), Map.of("x", image(1)));
        Npz.write(tmp.resolve("b.npz"), Map.of("x", image(1)));
        Npz.write(tmp.resolve("c.npz"), Map.of("x", image(Float.POSITIVE_INFINITY)));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, IMAGE)), "c.npz: ");
    }

    /** numpy's float64 to a float32 input, int32 to int64 and back where the values fit: the values carried over. */
    @Test
    void arraysOfAnotherWidthAreConvertedWhereTheValuesCarryOver() throws IOException {
        ByteBuffer d = ByteBuffer.allocate(48 * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 48; i++) {
            d.putDouble(0.25 * i);
        }
        Npz.write(tmp.resolve("a.npz"), Map.of("x", new HostTensor(DataType.DOUBLE, new long[] {1, 3, 4, 4}, d.flip())));
        HostTensor x = all(CalibrationSources.open(tmp, IMAGE)).get(0).inputs().get("x");
        assertEquals(DataType.FLOAT, x.type());
        assertEquals(11.75f, x.toFloats()[47]);
        Path text = Files.createDirectories(tmp.resolve("text"));
        writeNpy(text.resolve("input_ids.npy"), HostTensor.ofInts(new long[] {1, 3}, new int[] {101, 7, 102}));
        writeNpy(text.resolve("attention_mask.npy"), HostTensor.ofInts(new long[] {1, 3}, new int[] {1, 1, 1}));
        HostTensor ids = all(CalibrationSources.open(text, BERT)).get(0).inputs().get("input_ids");
        assertEquals(DataType.INT64, ids.type());
        assertArrayEquals(new long[] {101, 7, 102}, ids.toLongs());
        List<InputSpec> int32 = List.of(new InputSpec("input_ids", DataType.INT32, new long[] {1, -1}),
                new InputSpec("attention_mask", DataType.INT32, new long[] {1, -1}));
        writeNpy(text.resolve("input_ids.npy"), HostTensor.ofLongs(new long[] {1, 3}, new long[] {101, 7, 102}));
        assertEquals(DataType.INT32, all(CalibrationSources.open(text, int32)).get(0).inputs().get("input_ids").type());
        writeNpy(text.resolve("input_ids.npy"), HostTensor.ofLongs(new long[] {1, 3}, new long[] {101, 1L << 40, 102}));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(text, int32)), "input_ids.npy: ",
                "1099511627776 at index [0, 1]", "INT32");
    }

    @Test
    void errorsInANpyFolderNameTheFile() throws IOException {
        writeNpy(tmp.resolve("input_ids.npy"), ids(3, 2));
        writeNpy(tmp.resolve("attention_mask.npy"), HostTensor.ofFloats(new long[] {1, 3}, new float[3]));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "attention_mask.npy: input 'attention_mask' is FLOAT but the model takes INT64");
        Files.write(tmp.resolve("attention_mask.npy"), new byte[] {(byte) 0x93, 'N', 'U'});
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "attention_mask.npy: ", "truncated");
        Files.delete(tmp.resolve("attention_mask.npy"));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                tmp + ": no array for model input 'attention_mask'", "name each file <input>.npy");
    }

    @Test
    void fortranOrderNpyInAFolderIsReadTransposed() throws IOException {
        Files.copy(resource("npy/transposed.npy"), tmp.resolve("x.npy"));
        Sample s = all(CalibrationSources.open(tmp, List.of(new InputSpec("x", DataType.FLOAT, new long[] {3, 2}))))
                .get(0);
        assertArrayEquals(new float[] {-2.5f, 0.5f, -1.5f, 1.5f, -0.5f, 2.5f}, s.inputs().get("x").toFloats());
    }

    @Test
    void emptyMissingAndNonFolders() throws IOException {
        Path none = tmp.resolve("none");
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(none, BERT)),
                "calibration folder not found: " + none);
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        Files.writeString(empty.resolve("notes.txt"), "nothing to see");
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(empty, BERT)),
                "no calibration samples in " + empty);
        Path file = Files.writeString(tmp.resolve("file.npz"), "x");
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(file, BERT)),
                "not a folder: " + file);
    }

    @Test
    void corruptNpzAndNpy() throws IOException {
        Files.write(tmp.resolve("broken.npz"), new byte[] {1, 2, 3, 4, 5});
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)), "broken.npz: ");
        Files.delete(tmp.resolve("broken.npz"));
        Files.copy(resource("npy/big_endian.npy"), tmp.resolve("x.npy"));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, IMAGE)), "x.npy: ",
                "big-endian");
    }

    @Test
    void mixedFolderIsAnError() throws IOException {
        Npz.write(tmp.resolve("a.npz"), Map.of("x", image(0)));
        writeNpy(tmp.resolve("x.npy"), image(0));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, IMAGE)), tmp + ": mixes ",
                ".npz", ".npy");
    }

    @Test
    void testDataSetErrors() throws IOException {
        Path set = Files.createDirectories(tmp.resolve("test_data_set_0"));
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                set + ": no input_<i>.pb files");
        Files.write(set.resolve("input_0.pb"), ids(3, 0).toProto("").toByteArray());
        Files.write(set.resolve("input_1.pb"), ids(3, 0).toProto("").toByteArray());
        Files.write(set.resolve("input_2.pb"), ids(3, 0).toProto("").toByteArray());
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "input_2.pb: unnamed tensor at position 2 but the model takes only 2 inputs");
        Files.write(set.resolve("input_2.pb"), ids(3, 0).toProto("input_ids").toByteArray());
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "input_2.pb: a second value for input 'input_ids'", "input_0.pb");
        Files.delete(set.resolve("input_2.pb"));
        Files.write(set.resolve("input_1.pb"), new byte[] {(byte) 0xff, (byte) 0xff, 1});
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "input_1.pb: not a serialized TensorProto");
        Files.write(set.resolve("input_1.pb"), TensorProto.newBuilder().setDataType(1).addDims(1).addDims(3)
                .addFloatData(1).build().toByteArray()); // 1 value for 3 elements
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)), "input_1.pb: ");
        Files.write(set.resolve("input_1.pb"), HostTensor.ofFloats(new long[] {1, 3}, new float[3]).toProto("")
                .toByteArray());
        assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.open(tmp, BERT)),
                "input_1.pb: input 'attention_mask' is FLOAT but the model takes INT64");
    }

    // ---- split ----

    static CalibrationSource numbered(int n) {
        List<Sample> all = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            all.add(new Sample("s" + i, Map.of("input_ids", ids(2, i))));
        }
        return CalibrationSources.ofList(all);
    }

    private static List<String> ids(CalibrationSource s) {
        return all(s).stream().map(Sample::id).toList();
    }

    @Test
    void splitIsSeededDisjointCompleteAndKeepsOrder() {
        CalibrationSource src = numbered(20);
        List<CalibrationSource> a = CalibrationSources.split(src, 0.25, 42);
        assertEquals(15, a.get(0).size());
        assertEquals(5, a.get(1).size());
        List<String> calib = ids(a.get(0));
        List<String> held = ids(a.get(1));
        assertEquals(15, calib.size());
        assertEquals(5, held.size());
        Set<String> union = new HashSet<>(calib);
        union.addAll(held);
        assertEquals(new HashSet<>(ids(src)), union, "together they hold every sample");
        assertTrue(calib.stream().noneMatch(held::contains), "disjoint");
        for (List<String> part : List.of(calib, held)) {
            List<Integer> positions = part.stream().map(s -> Integer.parseInt(s.substring(1))).toList();
            assertEquals(positions.stream().sorted().toList(), positions, "source order kept");
        }
        List<CalibrationSource> again = CalibrationSources.split(src, 0.25, 42);
        assertEquals(held, ids(again.get(1)), "same seed, same split");
        assertEquals(calib, ids(again.get(0)));
        assertNotEquals(held, ids(CalibrationSources.split(src, 0.25, 43).get(1)), "another seed, another split");
        assertEquals(ids(a.get(1)), ids(a.get(1)), "parts are re-iterable");
    }

    @Test
    void splitEdgeCases() {
        List<CalibrationSource> none = CalibrationSources.split(numbered(10), 0, 1);
        assertEquals(10, none.get(0).size());
        assertEquals(0, none.get(1).size());
        assertEquals(List.of(), ids(none.get(1)));
        List<CalibrationSource> one = CalibrationSources.split(numbered(1), 0.5, 1);
        assertEquals(List.of("s0"), ids(one.get(0)));
        assertEquals(0, one.get(1).size());
        List<CalibrationSource> tiny = CalibrationSources.split(numbered(3), 0.01, 1);
        assertEquals(1, tiny.get(1).size(), "a positive fraction holds out at least one sample");
        List<CalibrationSource> most = CalibrationSources.split(numbered(3), 0.99, 1);
        assertEquals(1, most.get(0).size(), "at least one sample is left to calibrate on");
        for (double bad : new double[] {-0.1, 1, Double.NaN}) {
            assertOneLine(assertThrows(QwtException.class, () -> CalibrationSources.split(numbered(4), bad, 1)),
                    "hold-out fraction must be in [0, 1)");
        }
    }

    @Test
    void splitOfAStreamingSourceMatchesTheIndexedOne() {
        CalibrationSource indexed = numbered(12);
        CalibrationSource streaming = new CalibrationSource() {
            @Override
            public int size() {
                return indexed.size();
            }

            @Override
            public Iterator<Sample> iterator() {
                return indexed.iterator();
            }
        };
        for (int part = 0; part < 2; part++) {
            assertEquals(ids(CalibrationSources.split(indexed, 0.3, 7).get(part)),
                    ids(CalibrationSources.split(streaming, 0.3, 7).get(part)));
        }
    }

    @Test
    void splitOfAFolderReadsLazily() {
        for (int i = 0; i < 6; i++) {
            Npz.write(tmp.resolve("s" + i + ".npz"), Map.of("x", image(i)));
        }
        List<CalibrationSource> parts = CalibrationSources.split(CalibrationSources.open(tmp, IMAGE), 0.5, 3);
        Set<Float> values = new HashSet<>();
        for (CalibrationSource p : parts) {
            assertEquals(3, p.size());
            p.forEach(s -> values.add(s.inputs().get("x").toFloats()[0]));
        }
        assertEquals(Set.of(0f, 1f, 2f, 3f, 4f, 5f), values);
    }
}
