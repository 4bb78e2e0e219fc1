package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import javax.sound.sampled.AudioFileFormat;
import javax.sound.sampled.AudioFormat;
import javax.sound.sampled.AudioInputStream;
import javax.sound.sampled.AudioSystem;
import javax.sound.sampled.UnsupportedAudioFileException;

/**
 * A folder of WAV files (in file-name order, hidden files ignored) as samples of a model with one float waveform
 * input: one dimension of samples, the last, every other of size 1. Each file is decoded by the JDK's own audio
 * readers (PCM of 8 to 32 bits, float), its channels averaged to one and converted to the spec's sample rate by
 * the JDK's resampler, values in [-1, 1] times the spec's scale. A file gives consecutive windows of the
 * window length (the spec's, else the input's own), the rest dropped, and a file shorter than one window one
 * window padded with silence; where neither gives a length, each file is one sample, at most
 * {@link AudioSpec#MAX_SECONDS} of it. Files are decoded when their samples are needed.
 */
public final class AudioFolderSource implements IndexedSource {
    /**
     * How audio becomes a model's input: the rate the model takes (Hz), the window (samples; 0: see above), and the
     * factor applied to values in [-1, 1] (32768 for a model that takes 16-bit values as floats, as openWakeWord's
     * melspectrogram does).
     */
    public record AudioSpec(int sampleRate, int window, float scale) {
        /** The longest sample taken from one file where no window length is known. */
        public static final int MAX_SECONDS = 30;
        /** The rate of most speech models (Silero VAD, openWakeWord, Whisper, wav2vec 2.0). */
        public static final int DEFAULT_RATE = 16000;

        public AudioSpec {
            if (sampleRate < 1000 || sampleRate > 384000) {
                throw new QwtException("--sample-rate must be 1000 to 384000 Hz, got " + sampleRate);
            }
            if (window < 0) {
                throw new QwtException("--window must be a number of samples above 0, got " + window);
            }
            if (!(scale > 0) || Float.isInfinite(scale)) {
                throw new QwtException("--audio-scale must be a finite number above 0, got " + scale);
            }
        }

        public static AudioSpec defaults() {
            return new AudioSpec(DEFAULT_RATE, 0, 1f);
        }
    }

    /** Window {@code index} of a file (-1: the file as one sample): {@code length} samples from {@code start}, at the spec's rate. */
    private record Window(Path file, int index, long start, int length) {
    }

    private final List<Window> windows;
    private final AudioSpec spec;
    private final String input;
    private final long[] shape;
    /** The last file decoded and its samples: consecutive windows of one file decode it once. */
    private Path decodedFile;
    private float[] decoded;

    private AudioFolderSource(List<Window> windows, AudioSpec spec, String input, long[] shape) {
        this.windows = windows;
        this.spec = spec;
        this.input = input;
        this.shape = shape;
    }

    /**
     * Opens the folder for the model's inputs: checks that the model takes exactly one float waveform input, that
     * the window fits it, and that every file is audio the JDK decodes (its header only), and lists the windows.
     */
    public static AudioFolderSource open(Path dir, AudioSpec spec, List<InputSpec> inputs) {
        if (inputs.size() != 1) {
            throw new QwtException("audio calibration data feeds one model input, but the model takes " + inputs.size()
                    + ": " + inputs.stream().map(InputSpec::name).toList() + " (use --calib with .npz files instead)");
        }
        InputSpec in = inputs.get(0);
        if (in.type() != DataType.FLOAT) {
            throw new QwtException("model input '" + in.name() + "' is " + in.type() + "; audio makes FLOAT inputs");
        }
        long[] s = in.rankKnown() ? in.shape() : new long[] {1, -1};
        if (s.length == 0) {
            throw new QwtException("model input '" + in.name() + "' is a scalar; audio makes a waveform input");
        }
        for (int i = 0; i < s.length - 1; i++) {
            if (s[i] > 1) {
                throw new QwtException("model input '" + in.name() + "' has shape " + in.shapeText() + "; audio makes a "
                        + "waveform input, one dimension of samples (the last), the others 1 (use --calib with .npz files "
                        + "for features)");
            }
        }
        long own = s[s.length - 1];
        if (spec.window() > 0 && own > 0 && own != spec.window()) {
            throw new QwtException("window of " + spec.window() + " samples does not fit model input '" + in.name()
                    + "' of shape " + in.shapeText());
        }
        int window = spec.window() > 0 ? spec.window() : (int) Math.max(0, Math.min(own, Integer.MAX_VALUE));
        long[] shape = new long[s.length];
        java.util.Arrays.fill(shape, 1);
        List<Window> windows = new ArrayList<>();
        for (Path f : list(dir)) {
            long frames = frames(f, spec.sampleRate());
            if (window == 0) {
                windows.add(new Window(f, -1, 0, (int) Math.min(Math.max(frames, 1),
                        (long) AudioSpec.MAX_SECONDS * spec.sampleRate())));
                continue;
            }
            long count = Math.max(1, frames / window);
            for (int k = 0; k < count; k++) {
                windows.add(new Window(f, k, (long) k * window, window));
            }
        }
        return new AudioFolderSource(List.copyOf(windows), spec, in.name(), shape);
    }

    static boolean isAudio(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return !n.startsWith(".") && n.endsWith(".wav");
    }

    private static List<Path> list(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new QwtException((Files.exists(dir) ? "audio folder is not a folder: " : "audio folder not found: ") + dir);
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> Files.isRegularFile(p) && isAudio(p))
                    .sorted(Comparator.comparing(p -> p.getFileName().toString())).toList();
        } catch (IOException e) {
            throw new QwtException("cannot list audio folder " + dir + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new QwtException("no .wav files in " + dir);
        }
        return files;
    }

    /** The file's length in samples at {@code rate}, from its header. */
    private static long frames(Path f, int rate) {
        AudioFileFormat format;
        try {
            format = AudioSystem.getAudioFileFormat(f.toFile());
        } catch (UnsupportedAudioFileException e) {
            throw new QwtException(f + ": not a WAV file the JDK decodes (PCM of 8 to 32 bits, or float)", e);
        } catch (IOException e) {
            throw new QwtException(f + ": cannot read audio: " + e.getMessage(), e);
        }
        long frames = format.getFrameLength();
        float fileRate = format.getFormat().getSampleRate();
        if (frames == AudioSystem.NOT_SPECIFIED || fileRate <= 0) {
            throw new QwtException(f + ": its header gives no length or sample rate");
        }
        return Math.round(frames * (double) rate / fileRate);
    }

    /** The whole file at the spec's rate, one channel (the mean of its channels), values as the file scales them. */
    static float[] decode(Path f, int rate) {
        try (AudioInputStream in = AudioSystem.getAudioInputStream(f.toFile())) {
            AudioFormat from = in.getFormat();
            int channels = from.getChannels();
            AudioFormat to = new AudioFormat(AudioFormat.Encoding.PCM_FLOAT, rate, 32, channels, 4 * channels, rate, false);
            byte[] bytes;
            if (from.matches(to)) {
                bytes = in.readAllBytes();
            } else {
                try (AudioInputStream converted = AudioSystem.getAudioInputStream(to, in)) {
                    bytes = converted.readAllBytes();
                }
            }
            FloatBuffer fb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            int frames = fb.limit() / channels;
            // The JDK's resampler delays its output by the frames it adds (1 to 4 here, more the lower the file's
            // rate): those leading frames are dropped, so that the sound starts where the file's does.
            long expected = in.getFrameLength() == AudioSystem.NOT_SPECIFIED ? frames
                    : Math.round(in.getFrameLength() * (double) rate / from.getSampleRate());
            int delay = (int) Math.max(0, Math.min(frames - expected, frames));
            float[] mono = new float[frames - delay];
            for (int i = 0; i < mono.length; i++) {
                float sum = 0;
                for (int c = 0; c < channels; c++) {
                    sum += fb.get((i + delay) * channels + c);
                }
                mono[i] = sum / channels;
            }
            return mono;
        } catch (UnsupportedAudioFileException | IllegalArgumentException e) {
            throw new QwtException(f + ": cannot decode audio at " + rate + " Hz: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new QwtException(f + ": cannot read audio: " + e.getMessage(), e);
        }
    }

    public AudioSpec spec() {
        return spec;
    }

    @Override
    public int size() {
        return windows.size();
    }

    @Override
    public Sample sample(int index) {
        Window w = windows.get(index);
        float[] all;
        synchronized (this) {
            if (!w.file().equals(decodedFile)) {
                decoded = decode(w.file(), spec.sampleRate());
                decodedFile = w.file();
            }
            all = decoded;
        }
        float[] v = new float[w.length()];
        for (int i = 0; i < v.length && w.start() + i < all.length; i++) {
            v[i] = all[(int) w.start() + i] * spec.scale();
        }
        long[] s = shape.clone();
        s[s.length - 1] = w.length();
        return new Sample(w.file() + (w.index() < 0 ? "" : "#" + w.index()), Map.of(input, HostTensor.ofFloats(s, v)));
    }
}
