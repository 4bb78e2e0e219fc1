package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.AudioFolderSource;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.ImageFolderSource;
import dev.qwtonnx.calib.data.ImageSpec;
import dev.qwtonnx.calib.data.InputSpec;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.TextSource;
import dev.qwtonnx.model.Model;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * Where a command's samples come from, one of four sources with the options each reads: arrays, images, audio or
 * text (quantize's and compensate's calibration data, verify's data; {@code --data} names the arrays' folder as
 * well as {@code --calib}).
 */
final class CalibrationMixin {
    /** How the command names the arrays' folder in its messages: {@code --calib}, or {@code --data} for verify. */
    private final String folderOption;

    CalibrationMixin() {
        this("--calib");
    }

    CalibrationMixin(String folderOption) {
        this.folderOption = folderOption;
    }

    @Option(names = {"--calib", "--data"}, paramLabel = "DIR",
            description = "Samples: a folder of .npz files (arrays named by model input, or unnamed in input order), "
                    + "of .npy files (<input>.npy; a file per sample for a one-input model), or of ONNX test-data sets "
                    + "(test_data_set_*/input_*.pb).")
    Path calib;

    @Option(names = "--calib-images", paramLabel = "DIR",
            description = "Samples as images: a folder of JPEG/PNG files for a model with one image input.")
    Path calibImages;

    @Option(names = "--image-size", paramLabel = "WxH",
            description = "Images are resized to cover WxH and center-cropped (default: the model's input size).")
    String imageSize;

    @Option(names = "--mean", split = ",", paramLabel = "M", description = "Per-channel mean (RGB order) "
            + "subtracted after scaling to [0,1], e.g. 0.485,0.456,0.406 (default: 0).")
    float[] mean;

    @Option(names = "--std", split = ",", paramLabel = "S", description = "Per-channel std (RGB order) "
            + "dividing after the mean, e.g. 0.229,0.224,0.225 (default: 1).")
    float[] std;

    @Option(names = "--layout", paramLabel = "L", description = "Image tensor layout: NCHW or NHWC (default: the one "
            + "whose channel axis the model's input gives 3 channels; NCHW where both or neither do).")
    String layout;

    @Option(names = "--channels", paramLabel = "C", description = "Channel order: RGB or BGR (default: RGB).")
    String channels;

    @Option(names = "--image-spec", paramLabel = "FILE", description = "A JSON file with size, mean, std, layout, "
            + "channels; the options above override it.")
    Path imageSpec;

    @Option(names = "--calib-audio", paramLabel = "DIR",
            description = "Samples as audio: a folder of WAV files for a model with one waveform input.")
    Path calibAudio;

    @Option(names = "--sample-rate", paramLabel = "HZ", description = "The rate the model takes audio at; files at "
            + "other rates are resampled (default: " + AudioFolderSource.AudioSpec.DEFAULT_RATE + ").")
    Integer sampleRate;

    @Option(names = "--window", paramLabel = "N", description = "Samples per audio window: each file gives "
            + "consecutive windows (default: the model input's length; where it has none, each file up to "
            + AudioFolderSource.AudioSpec.MAX_SECONDS + " s).")
    Integer window;

    @Option(names = "--audio-scale", paramLabel = "X", description = "Factor on audio values in [-1, 1]: 32768 for a "
            + "model that takes 16-bit sample values as floats (default: 1).")
    Float audioScale;

    @Option(names = "--calib-text", paramLabel = "FILE",
            description = "Samples as text: one per non-blank line of FILE (needs --tokenizer).")
    Path calibText;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "HuggingFace tokenizer.json for --calib-text.")
    Path tokenizer;

    @Option(names = "--max-length", defaultValue = "128", paramLabel = "N",
            description = "Tokens per line at most (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--limit", defaultValue = "0", paramLabel = "N",
            description = "Use at most N samples; 0 = all (default: ${DEFAULT-VALUE}).")
    int limit;

    /** The first {@code --limit} samples of {@code all}, or as many drawn at random with {@code seed} (null: in order). */
    CalibrationSource limited(CalibrationSource all, Long seed) {
        return CalibrationSources.limit(all, limit, seed);
    }

    /** The folder or file the samples come from (after {@link #open}). */
    Path source() {
        return calib != null ? calib : calibImages != null ? calibImages : calibAudio != null ? calibAudio : calibText;
    }

    /**
     * Fails, in one line, unless the options name exactly one source and only the options of that source: before any
     * model is read.
     */
    void check() {
        long given = java.util.stream.Stream.of(calib, calibImages, calibAudio, calibText)
                .filter(java.util.Objects::nonNull).count();
        if (given != 1) {
            throw new QwtException(given == 0 ? "no samples: give " + folderOption + " DIR, --calib-images DIR, "
                    + "--calib-audio DIR or --calib-text FILE"
                    : "give only one of " + folderOption + ", --calib-images, --calib-audio and --calib-text");
        }
        if (calibAudio == null && (sampleRate != null || window != null || audioScale != null)) {
            throw new QwtException("--sample-rate, --window and --audio-scale are for --calib-audio");
        }
        if (calibText == null && tokenizer != null) {
            throw new QwtException("--tokenizer is for --calib-text");
        }
        if (calibText != null && tokenizer == null) {
            throw new QwtException("--calib-text needs --tokenizer tokenizer.json");
        }
        boolean imageOptions = imageSize != null || mean != null || std != null || layout != null || channels != null
                || imageSpec != null;
        if (calibImages == null && imageOptions) {
            throw new QwtException("--image-size, --mean, --std, --layout, --channels and --image-spec are for --calib-images");
        }
    }

    /** The one calibration source the options name (the caller closes it: a tokenizer is native). */
    CalibrationSource open(Model floatModel) {
        check();
        List<InputSpec> specs = InputSpecs.of(floatModel.graph());
        CalibrationSource src;
        if (calibImages != null) {
            ImageSpec spec = imageSpecOf();
            if (layout == null && imageSpec == null) {
                // Not chosen: the layout whose channel axis the model gives 3 (a Keras export takes NHWC).
                spec = spec.withLayout(ImageFolderSource.layoutOf(specs, spec.layout()));
            }
            src = ImageFolderSource.open(calibImages, spec, specs);
        } else if (calibAudio != null) {
            src = AudioFolderSource.open(calibAudio, new AudioFolderSource.AudioSpec(
                    sampleRate != null ? sampleRate : AudioFolderSource.AudioSpec.DEFAULT_RATE, window != null ? window : 0,
                    audioScale != null ? audioScale : 1f), specs);
        } else if (calibText != null) {
            src = TextSource.open(calibText, tokenizer, maxLength, specs);
        } else {
            src = CalibrationSources.open(calib, specs);
        }
        return src;
    }

    private ImageSpec imageSpecOf() {
        ImageSpec s = ImageSpec.defaults();
        if (imageSpec != null) {
            s = s.withFile(imageSpec);
        }
        if (imageSize != null) {
            int[] wh = ImageSpec.parseSize(imageSize, "--image-size");
            s = s.withSize(wh[0], wh[1]);
        }
        if (mean != null) {
            s = s.withMean(mean);
        }
        if (std != null) {
            s = s.withStd(std);
        }
        if (layout != null) {
            s = s.withLayout(ImageSpec.parseEnum(ImageSpec.Layout.class, layout, "--layout"));
        }
        if (channels != null) {
            s = s.withChannels(ImageSpec.parseEnum(ImageSpec.Channels.class, channels, "--channels"));
        }
        return s;
    }
}
