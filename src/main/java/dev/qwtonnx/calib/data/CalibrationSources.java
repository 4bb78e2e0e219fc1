package dev.qwtonnx.calib.data;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.IntFunction;
import java.util.stream.Stream;

/**
 * Calibration data from folders, read lazily (one sample in memory at a time) and checked against
 * the model's inputs as it is read.
 */
public final class CalibrationSources {
    private CalibrationSources() {
    }

    /** A source whose samples are loaded on demand by index. */
    private record Indexed(int size, IntFunction<Sample> loader) implements CalibrationSource {
        @Override
        public Iterator<Sample> iterator() {
            return new Iterator<>() {
                int i;

                @Override
                public boolean hasNext() {
                    return i < size;
                }

                @Override
                public Sample next() {
                    if (i >= size) {
                        throw new NoSuchElementException();
                    }
                    return loader.apply(i++);
                }
            };
        }
    }

    public static CalibrationSource ofList(List<Sample> samples) {
        List<Sample> copy = List.copyOf(samples);
        return new Indexed(copy.size(), copy::get);
    }

    /**
     * Opens a folder of .npz files (one file, one sample), of ONNX test-data sets
     * (test_data_set_N/input_K.pb), or of {@code <input>.npy} files (one sample).
     */
    public static CalibrationSource open(Path dir, List<InputSpec> specs) {
        if (!Files.exists(dir)) {
            throw new QwtException("calibration folder not found: " + dir);
        }
        if (!Files.isDirectory(dir)) {
            throw new QwtException("calibration path is not a folder: " + dir);
        }
        List<Path> entries;
        try (Stream<Path> s = Files.list(dir)) {
            entries = s.sorted().toList();
        } catch (IOException e) {
            throw new QwtException("cannot list calibration folder " + dir + ": " + e.getMessage());
        }
        List<Path> npz = entries.stream().filter(p -> name(p).endsWith(".npz") && Files.isRegularFile(p)).toList();
        List<Path> sets = entries.stream().filter(p -> name(p).startsWith("test_data_set") && Files.isDirectory(p))
                .toList();
        List<Path> npy = entries.stream().filter(p -> name(p).endsWith(".npy") && Files.isRegularFile(p)).toList();
        CalibrationSource src;
        if (!npz.isEmpty()) {
            src = new Indexed(npz.size(), i -> check(new Sample(npz.get(i).toString(), Npz.read(npz.get(i))), specs));
        } else if (!sets.isEmpty()) {
            src = new Indexed(sets.size(), i -> check(readTestDataSet(sets.get(i), specs), specs));
        } else if (!npy.isEmpty()) {
            src = new Indexed(1, i -> check(readNpyFolder(dir, npy), specs));
        } else {
            throw new QwtException("no calibration samples in " + dir
                    + " (expected .npz files, <input>.npy files or test_data_set_* folders)");
        }
        src.iterator().next(); // fail now, not after minutes of work, on a wrong first sample
        return src;
    }

    private static String name(Path p) {
        return p.getFileName().toString();
    }

    private static Sample readNpyFolder(Path dir, List<Path> files) {
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        for (Path f : files) {
            try (InputStream in = Files.newInputStream(f)) {
                String n = name(f);
                arrays.put(n.substring(0, n.length() - 4), Npy.read(in, f.toString()));
            } catch (IOException e) {
                throw new QwtException(f + ": cannot read: " + e.getMessage());
            }
        }
        return new Sample(dir.toString(), arrays);
    }

    private static Sample readTestDataSet(Path set, List<InputSpec> specs) {
        List<Path> files;
        try (Stream<Path> s = Files.list(set)) {
            files = s.filter(p -> name(p).startsWith("input_") && name(p).endsWith(".pb")).sorted().toList();
        } catch (IOException e) {
            throw new QwtException("cannot list " + set + ": " + e.getMessage());
        }
        if (files.isEmpty()) {
            throw new QwtException(set + ": no input_*.pb files");
        }
        Map<String, HostTensor> arrays = new LinkedHashMap<>();
        for (Path f : files) {
            String n = name(f);
            int index;
            try {
                index = Integer.parseInt(n.substring("input_".length(), n.length() - 3));
            } catch (NumberFormatException e) {
                throw new QwtException(f + ": expected a name input_<number>.pb");
            }
            TensorProto t;
            try {
                t = TensorProto.parseFrom(Files.readAllBytes(f));
            } catch (InvalidProtocolBufferException e) {
                throw new QwtException(f + ": not a TensorProto");
            } catch (IOException e) {
                throw new QwtException(f + ": cannot read: " + e.getMessage());
            }
            String input = !t.getName().isEmpty() ? t.getName()
                    : index < specs.size() ? specs.get(index).name() : null;
            if (input == null) {
                throw new QwtException(f + ": unnamed tensor at position " + index + " but the model has only "
                        + specs.size() + " inputs");
            }
            if (!DataType.isKnown(t.getDataType())) {
                throw new QwtException(f + ": unsupported element type " + t.getDataType());
            }
            try {
                arrays.put(input, Tensors.toHost(t));
            } catch (QwtException e) {
                throw new QwtException(f + ": " + e.getMessage());
            }
        }
        return new Sample(files.get(0).toString(), arrays);
    }

    /** The sample restricted to the model's inputs, after checking each one fits. */
    static Sample check(Sample s, List<InputSpec> specs) {
        Map<String, HostTensor> fed = new LinkedHashMap<>();
        for (InputSpec spec : specs) {
            HostTensor t = s.inputs().get(spec.name());
            if (t == null) {
                throw new QwtException(s.id() + ": no value for model input '" + spec.name() + "' (found "
                        + new TreeSet<>(s.inputs().keySet()) + ")");
            }
            if (t.type() != spec.type()) {
                throw new QwtException(s.id() + ": input '" + spec.name() + "' is " + t.type() + " but the model takes "
                        + spec.type());
            }
            long[] want = spec.shape();
            long[] got = t.shape();
            if (!InputSpecs.unknownRank(spec)) {
                boolean fits = want.length == got.length;
                for (int i = 0; fits && i < want.length; i++) {
                    fits = want[i] < 0 || want[i] == got[i];
                }
                if (!fits) {
                    throw new QwtException(s.id() + ": input '" + spec.name() + "' has shape " + Arrays.toString(got)
                            + " but the model takes " + Arrays.toString(want).replace("-1", "?"));
                }
            }
            if (t.type() == DataType.FLOAT || t.type() == DataType.DOUBLE || t.type() == DataType.FLOAT16) {
                for (float v : t.toFloats()) {
                    if (!Float.isFinite(v)) {
                        throw new QwtException(s.id() + ": input '" + spec.name() + "' contains NaN or infinity");
                    }
                }
            }
            fed.put(spec.name(), t);
        }
        return new Sample(s.id(), fed);
    }

    /**
     * A seeded, deterministic split into [calibration, held-out]: round(n·fraction) samples held
     * out (at least one, and one left to calibrate on where n ≥ 2). Both keep the source's order.
     */
    public static List<CalibrationSource> split(CalibrationSource src, double holdoutFraction, long seed) {
        int n = src.size();
        int k = (int) Math.round(n * holdoutFraction);
        if (holdoutFraction > 0 && n >= 2) {
            k = Math.max(1, Math.min(n - 1, k));
        } else {
            k = 0;
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(seed));
        Set<Integer> held = new HashSet<>(order.subList(0, k));
        return List.of(filtered(src, i -> !held.contains(i), n - k), filtered(src, held::contains, k));
    }

    private static CalibrationSource filtered(CalibrationSource src, java.util.function.IntPredicate keep, int size) {
        if (src instanceof Indexed idx) {
            int[] picked = java.util.stream.IntStream.range(0, idx.size()).filter(keep).toArray();
            return new Indexed(picked.length, j -> idx.loader().apply(picked[j]));
        }
        return new CalibrationSource() {
            @Override
            public int size() {
                return size;
            }

            @Override
            public Iterator<Sample> iterator() {
                Iterator<Sample> all = src.iterator();
                return new Iterator<>() {
                    int index = -1;
                    Sample next = advance();

                    private Sample advance() {
                        while (all.hasNext()) {
                            // A source without random access is streamed; skipped samples are read and dropped.
                            Sample s = all.next();
                            index++;
                            if (keep.test(index)) {
                                return s;
                            }
                        }
                        return null;
                    }

                    @Override
                    public boolean hasNext() {
                        return next != null;
                    }

                    @Override
                    public Sample next() {
                        if (next == null) {
                            throw new NoSuchElementException();
                        }
                        Sample s = next;
                        next = advance();
                        return s;
                    }
                };
            }
        };
    }

}
