package dev.qwtonnx.calib.data;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Random;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Calibration data from folders, checked against the model's inputs. {@link #open} checks every
 * sample once, streaming, so a bad file fails before any work starts; afterwards each pass over
 * the source reads the files again, so memory holds one sample at a time.
 */
public final class CalibrationSources {
    private static final String TEST_SET_PREFIX = "test_data_set";

    private CalibrationSources() {
    }

    /** A source whose samples are loaded on demand by index. */
    private record Indexed(int size, IntFunction<Sample> loader) implements IndexedSource {
        @Override
        public Sample sample(int index) {
            return loader.apply(index);
        }
    }

    /** A sample as read from disk, with the file each array came from (for error messages). */
    private record Loaded(Sample sample, Map<String, String> origins, String hint) {
    }

    public static CalibrationSource ofList(List<Sample> samples) {
        List<Sample> copy = List.copyOf(samples);
        return new Indexed(copy.size(), copy::get);
    }

    /**
     * Opens a folder of calibration data, detecting its kind:
     * <ul>
     *   <li>.npz files, one sample each, arrays named by model input, or unnamed (arr_0, arr_1, ...) in the
     *       model's input order;
     *   <li>ONNX test-data sets, {@code test_data_set_*}/{@code input_<i>.pb} (TensorProto), an array
     *       named by its tensor name, or by the i-th model input when the name is empty;
     *   <li>{@code <input>.npy} files, together one sample; for a model of one input whose name no file bears,
     *       a .npy file per sample.
     * </ul>
     * One sample whose arrays stack rows along a first axis every model input fixes at 1 is that many samples
     * (a single .npz or set of .npy files of the whole calibration set), held in memory once read.
     * Samples come in file-name order. Each must hold every model input with the model's element
     * type, rank and fixed dimensions and, for floating types, only finite values; arrays the model
     * does not take are dropped. Hidden files (names starting with '.') are ignored.
     */
    public static CalibrationSource open(Path dir, List<InputSpec> specs) {
        Objects.requireNonNull(specs, "specs");
        if (!Files.exists(dir)) {
            throw new QwtException("calibration folder not found: " + dir);
        }
        if (!Files.isDirectory(dir)) {
            throw new QwtException("calibration path is not a folder: " + dir);
        }
        List<Path> entries = list(dir);
        List<Path> npz = entries.stream().filter(p -> name(p).endsWith(".npz") && Files.isRegularFile(p)).toList();
        List<Path> sets = entries.stream().filter(p -> name(p).startsWith(TEST_SET_PREFIX) && Files.isDirectory(p))
                .toList();
        List<Path> npy = entries.stream().filter(p -> name(p).endsWith(".npy") && Files.isRegularFile(p)).toList();
        List<String> kinds = new ArrayList<>();
        if (!npz.isEmpty()) {
            kinds.add(npz.size() + " .npz files");
        }
        if (!sets.isEmpty()) {
            kinds.add(sets.size() + " " + TEST_SET_PREFIX + "_* folders");
        }
        if (!npy.isEmpty()) {
            kinds.add(npy.size() + " .npy files");
        }
        if (kinds.isEmpty()) {
            throw new QwtException("no calibration samples in " + dir
                    + " (expected .npz files, <input>.npy files or " + TEST_SET_PREFIX + "_* folders)");
        }
        if (kinds.size() > 1) {
            throw new QwtException(dir + ": mixes " + String.join(" and ", kinds)
                    + "; keep one kind of calibration data per folder");
        }
        IntFunction<Loaded> reader;
        int size;
        if (!npz.isEmpty()) {
            size = npz.size();
            reader = i -> readNpz(npz.get(i), specs);
        } else if (!sets.isEmpty()) {
            size = sets.size();
            reader = i -> readTestDataSet(sets.get(i), specs);
        } else if (specs.size() == 1 && npy.stream().noneMatch(f -> stem(f).equals(specs.get(0).name()))) {
            // A model of one input whose name no file bears: a file per sample, as np.save writes them one by one.
            size = npy.size();
            String input = specs.get(0).name();
            reader = i -> new Loaded(new Sample(npy.get(i).toString(), Map.of(input, Npy.read(npy.get(i)))),
                    Map.of(input, npy.get(i).toString()), "");
        } else {
            size = 1;
            reader = i -> readNpyFolder(dir, npy);
        }
        if (size == 1) {
            // One file (or one set of <input>.npy files) holding the samples stacked: split where nothing else fits.
            Loaded whole = reader.apply(0);
            int rows = stackedRows(whole.sample(), specs);
            if (rows > 1) {
                size = rows;
                reader = i -> rowOf(whole, specs, i);
            }
        }
        IntFunction<Loaded> read = reader;
        CalibrationSource src = new Indexed(size, i -> check(read.apply(i), specs));
        for (Sample ignored : src) {
            // Check every sample now, one at a time, rather than fail after minutes of work.
        }
        return src;
    }

    private static List<Path> list(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> !name(p).startsWith(".")).sorted(Comparator.comparing(CalibrationSources::name))
                    .toList();
        } catch (IOException e) {
            throw new QwtException("cannot list folder " + dir + ": " + Npy.oneLine(e), e);
        }
    }

    private static String name(Path p) {
        return p.getFileName().toString();
    }

    /** The file's name without its extension. */
    private static String stem(Path p) {
        String n = name(p);
        int dot = n.lastIndexOf('.');
        return dot < 0 ? n : n.substring(0, dot);
    }

    /**
     * A .npz file's arrays by name; saved without names ({@code np.savez(file, a, b)}: arr_0, arr_1, ...), one for each
     * model input, they are the inputs in the model's order, as an ONNX test-data set's unnamed tensors are.
     */
    private static Loaded readNpz(Path file, List<InputSpec> specs) {
        Map<String, HostTensor> arrays = Npz.read(file);
        boolean positional = !arrays.isEmpty() && arrays.keySet().stream().allMatch(k -> k.matches("arr_\\d+"));
        if (positional && arrays.size() == specs.size()) {
            Map<String, HostTensor> byInput = new LinkedHashMap<>();
            for (int i = 0; i < specs.size(); i++) {
                HostTensor t = arrays.get("arr_" + i);
                if (t == null) {
                    break;
                }
                byInput.put(specs.get(i).name(), t);
            }
            if (byInput.size() == specs.size()) {
                return new Loaded(new Sample(file.toString(), byInput), Map.of(), "");
            }
        }
        return new Loaded(new Sample(file.toString(), arrays), Map.of(), positional
                ? "; arrays saved without names, " + arrays.size() + " for " + specs.size()
                        + " inputs: use np.savez(file, <input>=array, ...)" : "");
    }

    private static Loaded readNpyFolder(Path dir, List<Path> files) {
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        Map<String, String> origins = new HashMap<>();
        for (Path f : files) {
            String n = name(f);
            String input = n.substring(0, n.length() - ".npy".length());
            arrays.put(input, Npy.read(f));
            origins.put(input, f.toString());
        }
        return new Loaded(new Sample(dir.toString(), arrays), origins, "; name each file <input>.npy");
    }

    private static Loaded readTestDataSet(Path set, List<InputSpec> specs) {
        List<Path> files = list(set).stream().filter(p -> name(p).matches("input_\\d+\\.pb")).toList();
        if (files.isEmpty()) {
            throw new QwtException(set + ": no input_<i>.pb files in this test-data set");
        }
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        Map<String, String> origins = new HashMap<>();
        for (Path f : files) {
            String n = name(f);
            int index;
            try {
                index = Integer.parseInt(n.substring("input_".length(), n.length() - ".pb".length()));
            } catch (NumberFormatException e) {
                throw new QwtException(f + ": input number is too large", e);
            }
            TensorProto t;
            try {
                t = TensorProto.parseFrom(Files.readAllBytes(f));
            } catch (InvalidProtocolBufferException e) {
                throw new QwtException(f + ": not a serialized TensorProto (" + e.getMessage() + ")", e);
            } catch (IOException e) {
                throw new QwtException(f + ": cannot read: " + Npy.oneLine(e), e);
            }
            String input;
            if (!t.getName().isEmpty()) {
                input = t.getName();
            } else if (index < specs.size()) {
                input = specs.get(index).name();
            } else {
                throw new QwtException(f + ": unnamed tensor at position " + index + " but the model takes only "
                        + specs.size() + " input" + (specs.size() == 1 ? "" : "s"));
            }
            if (arrays.containsKey(input)) {
                throw new QwtException(f + ": a second value for input '" + input + "' (also in "
                        + origins.get(input) + ")");
            }
            if (!DataType.isKnown(t.getDataType())) {
                throw new QwtException(f + ": unsupported tensor element type " + t.getDataType());
            }
            try {
                arrays.put(input, Tensors.toHost(t));
            } catch (QwtException | ArithmeticException e) {
                throw new QwtException(f + ": " + e.getMessage(), e);
            }
            origins.put(input, f.toString());
        }
        return new Loaded(new Sample(set.toString(), arrays), origins, "");
    }

    /**
     * The samples {@code s} stacks along its first axis, or 1: where every model input has a first dimension of 1
     * and the array for each one holds the same number of rows there, above 1 (arrays that could only be samples
     * stacked; a model taking any batch takes the stack as one).
     */
    private static int stackedRows(Sample s, List<InputSpec> specs) {
        long rows = -1;
        for (InputSpec spec : specs) {
            HostTensor t = s.inputs().get(spec.name());
            long[] want = spec.shape();
            if (t == null || want == null || want.length == 0 || want[0] != 1 || t.rank() != want.length) {
                return 1;
            }
            long n = t.shape()[0];
            if (n <= 1 || (rows >= 0 && n != rows)) {
                return 1;
            }
            rows = n;
        }
        return rows > Integer.MAX_VALUE ? 1 : (int) Math.max(rows, 1);
    }

    /** Row {@code i} of each of the model's inputs in {@code whole}, named after it. */
    private static Loaded rowOf(Loaded whole, List<InputSpec> specs, int i) {
        Map<String, HostTensor> row = new LinkedHashMap<>();
        for (InputSpec spec : specs) {
            row.put(spec.name(), whole.sample().inputs().get(spec.name()).row(i));
        }
        return new Loaded(new Sample(whole.sample().id() + "#" + i, row), whole.origins(), whole.hint());
    }

    /** The sample restricted to the model's inputs, after checking each one fits. */
    private static Sample check(Loaded loaded, List<InputSpec> specs) {
        Sample s = loaded.sample();
        Map<String, HostTensor> fed = new LinkedHashMap<>();
        for (InputSpec spec : specs) {
            HostTensor t = s.inputs().get(spec.name());
            if (t == null) {
                throw new QwtException(s.id() + ": no array for model input '" + spec.name() + "' (found "
                        + s.inputs().keySet().stream().sorted().toList() + ")" + loaded.hint());
            }
            String where = loaded.origins().getOrDefault(spec.name(), s.id()) + ": input '" + spec.name() + "'";
            t = converted(t, spec.type(), where);
            if (t.type() != spec.type()) {
                throw new QwtException(where + " is " + t.type() + " but the model takes " + spec.type());
            }
            if (spec.rankKnown()) {
                long[] want = spec.shape();
                long[] got = t.shape();
                if (want.length != got.length) {
                    throw new QwtException(where + " has rank " + got.length + " " + Arrays.toString(got)
                            + " but the model takes rank " + want.length + " " + spec.shapeText());
                }
                for (int i = 0; i < want.length; i++) {
                    if (want[i] >= 0 && want[i] != got[i]) {
                        throw new QwtException(where + " has shape " + Arrays.toString(got) + " but the model takes "
                                + spec.shapeText() + " (dimension " + i + " must be " + want[i] + ")");
                    }
                }
            }
            long bad = firstNonFinite(t);
            if (bad >= 0) {
                throw new QwtException(where + " has NaN or infinity at index " + Arrays.toString(unravel(bad, t.shape())));
            }
            fed.put(spec.name(), t);
        }
        return new Sample(s.id(), fed);
    }

    /**
     * {@code t} in the model's element type where the values carry over as they are: float64 or float16 arrays
     * (numpy's default is float64) to a float32 input, any integer array to an int64 input, and an integer array
     * whose values fit to an int32 input; otherwise {@code t} unchanged, for the caller to refuse.
     */
    private static HostTensor converted(HostTensor t, DataType want, String where) {
        DataType have = t.type();
        if (have == want) {
            return t;
        }
        boolean integer = have != DataType.FLOAT && have != DataType.DOUBLE && have != DataType.FLOAT16
                && have != DataType.BOOL;
        if (want == DataType.FLOAT && (have == DataType.DOUBLE || have == DataType.FLOAT16)) {
            return HostTensor.ofFloats(t.shape(), t.toFloats());
        }
        if (want == DataType.INT64 && integer && have != DataType.UINT64) {
            return HostTensor.ofLongs(t.shape(), t.toLongs());
        }
        if (want == DataType.INT32 && integer) {
            long[] v = t.toLongs();
            int[] narrow = new int[v.length];
            for (int i = 0; i < v.length; i++) {
                if (v[i] < Integer.MIN_VALUE || v[i] > Integer.MAX_VALUE) {
                    throw new QwtException(where + " is " + have + " with " + v[i] + " at index "
                            + Arrays.toString(unravel(i, t.shape())) + ", beyond the model's INT32");
                }
                narrow[i] = (int) v[i];
            }
            return HostTensor.ofInts(t.shape(), narrow);
        }
        return t;
    }

    /** The flat index of the first NaN or infinity, or -1 (always -1 for integer types). */
    private static long firstNonFinite(HostTensor t) {
        ByteBuffer b = t.bytes();
        int n = Math.toIntExact(t.numel());
        switch (t.type()) {
            case FLOAT -> {
                for (int i = 0; i < n; i++) {
                    if (!Float.isFinite(b.getFloat(i * 4))) {
                        return i;
                    }
                }
            }
            case DOUBLE -> {
                for (int i = 0; i < n; i++) {
                    if (!Double.isFinite(b.getDouble(i * 8))) {
                        return i;
                    }
                }
            }
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    if ((b.getShort(i * 2) & 0x7c00) == 0x7c00) {
                        return i;
                    }
                }
            }
            default -> {
            }
        }
        return -1;
    }

    private static long[] unravel(long flat, long[] shape) {
        long[] idx = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        return idx;
    }

    /**
     * A seeded, deterministic split into [calibration, held-out]: the samples are shuffled with
     * {@code seed} and the first round(n·fraction) of that order are held out (at least one, and at
     * least one left to calibrate on, when n ≥ 2 and fraction > 0). Both parts keep the source's
     * order, are disjoint, and together hold every sample. Fraction 0 or fewer than 2 samples: the
     * held-out part is empty.
     */
    public static List<CalibrationSource> split(CalibrationSource src, double holdoutFraction, long seed) {
        if (!(holdoutFraction >= 0 && holdoutFraction < 1)) {
            throw new QwtException("hold-out fraction must be in [0, 1), got " + holdoutFraction);
        }
        int n = src.size();
        int k = 0;
        if (holdoutFraction > 0 && n >= 2) {
            k = (int) Math.max(1, Math.min(n - 1, Math.round(n * holdoutFraction)));
        }
        List<Integer> order = new ArrayList<>(IntStream.range(0, n).boxed().toList());
        Collections.shuffle(order, new Random(seed));
        boolean[] held = new boolean[n];
        for (int i = 0; i < k; i++) {
            held[order.get(i)] = true;
        }
        int[] calib = IntStream.range(0, n).filter(i -> !held[i]).toArray();
        int[] holdout = IntStream.range(0, n).filter(i -> held[i]).toArray();
        return List.of(pick(src, calib), pick(src, holdout));
    }

    /**
     * At most {@code limit} samples (all when {@code limit} is 0 or at least the source's size):
     * the first ones in the source's order, or, with a {@code shuffleSeed}, a seeded random choice
     * in a seeded random order (the same seed always picks the same samples).
     */
    public static CalibrationSource limit(CalibrationSource src, int limit, Long shuffleSeed) {
        if (limit < 0) {
            throw new QwtException("the sample limit must be >= 0, got " + limit);
        }
        int n = src.size();
        int k = limit == 0 ? n : Math.min(limit, n);
        if (shuffleSeed == null) {
            return k == n ? src : pick(src, IntStream.range(0, k).toArray());
        }
        List<Integer> order = new ArrayList<>(IntStream.range(0, n).boxed().toList());
        Collections.shuffle(order, new Random(shuffleSeed));
        int[] chosen = order.subList(0, k).stream().mapToInt(Integer::intValue).toArray();
        if (!(src instanceof IndexedSource)) {
            // A streamed source can only be read forward: keep the random choice, in source order.
            Arrays.sort(chosen);
        }
        return pick(src, chosen);
    }

    /** The samples after the first {@code n} of a source, in its order. */
    public static CalibrationSource skip(CalibrationSource src, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("cannot skip " + n + " samples");
        }
        return n == 0 ? src : pick(src, IntStream.range(Math.min(n, src.size()), src.size()).toArray());
    }

    /** The samples at the given positions of a source (increasing, unless it has random access). */
    private static CalibrationSource pick(CalibrationSource src, int[] positions) {
        if (src instanceof IndexedSource idx) {
            return new Indexed(positions.length, j -> idx.sample(positions[j]));
        }
        return new CalibrationSource() {
            @Override
            public int size() {
                return positions.length;
            }

            @Override
            public Iterator<Sample> iterator() {
                // Without random access the source is streamed; samples not picked are read and dropped.
                Iterator<Sample> all = src.iterator();
                return new Iterator<>() {
                    int index = -1;
                    int j;

                    @Override
                    public boolean hasNext() {
                        return j < positions.length;
                    }

                    @Override
                    public Sample next() {
                        if (j >= positions.length) {
                            throw new NoSuchElementException();
                        }
                        while (all.hasNext()) {
                            Sample s = all.next();
                            if (++index == positions[j]) {
                                j++;
                                return s;
                            }
                        }
                        throw new NoSuchElementException("source ended before sample " + positions[j]);
                    }
                };
            }
        };
    }
}
