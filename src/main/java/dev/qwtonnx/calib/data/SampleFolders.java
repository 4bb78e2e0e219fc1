package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.function.Predicate;
import java.util.stream.Stream;

/** What the folder sources of one model input (images, audio) share: their files, and the input they feed. */
final class SampleFolders {
    private SampleFolders() {
    }

    /**
     * The files of {@code dir} that {@code accepted} takes, in file-name order (hidden files are the caller's to
     * leave out); {@code kind} names the folder in errors ("image", "audio"), {@code none} says what was looked for.
     */
    static List<Path> files(Path dir, String kind, Predicate<Path> accepted, String none) {
        if (!Files.isDirectory(dir)) {
            throw new QwtException((Files.exists(dir) ? kind + " folder is not a folder: " : kind + " folder not found: ")
                    + dir);
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> Files.isRegularFile(p) && accepted.test(p))
                    .sorted(Comparator.comparing(p -> p.getFileName().toString())).toList();
        } catch (IOException e) {
            throw new QwtException("cannot list " + kind + " folder " + dir + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new QwtException("no " + none + " in " + dir);
        }
        return files;
    }

    /** The model's one input, which must be FLOAT: {@code kind} data ("image", "audio") feeds one float input. */
    static InputSpec onlyFloatInput(List<InputSpec> inputs, String kind) {
        if (inputs.size() != 1) {
            throw new QwtException(kind + " calibration data feeds one model input, but the model takes " + inputs.size()
                    + ": " + inputs.stream().map(InputSpec::name).toList() + " (use --calib with .npz files instead)");
        }
        InputSpec in = inputs.get(0);
        if (in.type() != DataType.FLOAT) {
            throw new QwtException("model input '" + in.name() + "' is " + in.type() + "; " + kind
                    + " data makes FLOAT inputs");
        }
        return in;
    }
}
