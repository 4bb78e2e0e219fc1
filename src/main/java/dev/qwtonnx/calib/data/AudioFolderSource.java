package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
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
 * {@link AudioSpec#MAX_SECONDS} of it. Files are decoded when their samples are needed, front to back, a window
 * at a time.
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
    /** The file being read (see {@link Reader}), or null. */
    private Reader reader;

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
        InputSpec in = SampleFolders.onlyFloatInput(inputs, "audio");
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
        return SampleFolders.files(dir, "audio", AudioFolderSource::isAudio, ".wav files");
    }

    /** The file's length in samples at {@code rate}, from its header. */
    private static long frames(Path f, int rate) {
        AudioFileFormat format;
        try {
            format = AudioSystem.getAudioFileFormat(f.toFile());
        } catch (UnsupportedAudioFileException | IOException e) {
            throw unreadable(f, e);
        }
        long frames = format.getFrameLength();
        float fileRate = format.getFormat().getSampleRate();
        if (frames == AudioSystem.NOT_SPECIFIED || fileRate <= 0) {
            throw new QwtException(f + ": its header gives no length or sample rate");
        }
        return Math.round(frames * (double) rate / fileRate);
    }

    /**
     * A file being read front to back at the spec's rate: windows asked for in order are read from one stream, so
     * that no more than a window of a long recording is held (a file read again only where a window before the
     * stream's position is asked for).
     */
    private static final class Reader implements AutoCloseable {
        final Path file;
        private final AudioInputStream source;
        private final AudioInputStream stream;
        private final int channels;
        /** The next frame the stream gives, at the spec's rate. */
        long next;

        Reader(Path file, int rate) {
            this.file = file;
            try {
                source = AudioSystem.getAudioInputStream(file.toFile());
            } catch (UnsupportedAudioFileException | IOException e) {
                throw unreadable(file, e);
            }
            AudioFormat from = source.getFormat();
            channels = from.getChannels();
            AudioFormat to = floats(rate, channels);
            try {
                stream = from.matches(to) ? source : AudioSystem.getAudioInputStream(to, source);
                // The JDK's resampler delays its output by the frames it adds: dropped, so that the sound starts
                // where the file's does.
                skipFrames(from.matches(to) ? 0 : delay(from, rate));
            } catch (IllegalArgumentException e) {
                close();
                throw new QwtException(file + ": cannot decode audio at " + rate + " Hz: " + e.getMessage(), e);
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        /** {@code length} samples from frame {@code start} (not before {@link #next}), one channel, silence past the end. */
        float[] read(long start, int length) {
            float[] mono = new float[length];
            try {
                skipFrames(start - next);
                next = start;
                byte[] bytes = stream.readNBytes(length * channels * 4);
                FloatBuffer fb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                int frames = fb.limit() / channels;
                for (int i = 0; i < frames; i++) {
                    float sum = 0;
                    for (int c = 0; c < channels; c++) {
                        sum += fb.get(i * channels + c);
                    }
                    mono[i] = sum / channels;
                }
                next += frames;
            } catch (IOException e) {
                throw new QwtException(file + ": cannot read audio: " + e.getMessage(), e);
            }
            return mono;
        }

        private void skipFrames(long frames) {
            try {
                long bytes = frames * channels * 4L;
                while (bytes > 0) {
                    long skipped = stream.skip(bytes);
                    if (skipped <= 0) {
                        return; // the end: what is read from here on is silence
                    }
                    bytes -= skipped;
                }
            } catch (IOException e) {
                throw new QwtException(file + ": cannot read audio: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() {
            try {
                source.close();
            } catch (IOException e) {
                // Read only: nothing is lost.
            }
        }
    }

    /** The one-line error for a file the JDK's readers cannot open as audio. */
    private static QwtException unreadable(Path f, Exception e) {
        return e instanceof UnsupportedAudioFileException
                ? new QwtException(f + ": not a WAV file the JDK decodes (PCM of 8 to 32 bits, or float)", e)
                : new QwtException(f + ": cannot read audio: " + e.getMessage(), e);
    }

    /** Frames of 32-bit float samples at {@code rate}, as the readers give them. */
    private static AudioFormat floats(int rate, int channels) {
        return new AudioFormat(AudioFormat.Encoding.PCM_FLOAT, rate, 32, channels, 4 * channels, rate, false);
    }

    /** {@link #delay} by format and rate: the files of a folder mostly share one, and each count decodes a second. */
    private static final java.util.Map<String, Integer> DELAYS = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * The frames the JDK's resampler adds in front of its output converting {@code from} to {@code rate} (1 to 4 from
     * 48 down to 8 kHz), counted on a second of silence in that format.
     */
    static int delay(AudioFormat from, int rate) {
        return DELAYS.computeIfAbsent(from + " -> " + rate, k -> countDelay(from, rate));
    }

    private static int countDelay(AudioFormat from, int rate) {
        int frames = Math.round(from.getSampleRate());
        byte[] silence = new byte[frames * from.getFrameSize()];
        try (AudioInputStream in = new AudioInputStream(new java.io.ByteArrayInputStream(silence), from, frames);
                AudioInputStream out = AudioSystem.getAudioInputStream(floats(rate, from.getChannels()), in)) {
            long got = out.readAllBytes().length / (4L * from.getChannels());
            return (int) Math.max(0, got - Math.round(frames * (double) rate / from.getSampleRate()));
        } catch (IOException e) {
            return 0;
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
        float[] v;
        synchronized (this) {
            if (reader == null || !reader.file.equals(w.file()) || w.start() < reader.next) {
                close();
                reader = new Reader(w.file(), spec.sampleRate());
            }
            v = reader.read(w.start(), w.length());
        }
        for (int i = 0; i < v.length; i++) {
            v[i] *= spec.scale();
        }
        long[] s = shape.clone();
        s[s.length - 1] = w.length();
        return new Sample(w.file() + (w.index() < 0 ? "" : "#" + w.index()), Map.of(input, HostTensor.ofFloats(s, v)));
    }

    @Override
    public synchronized void close() {
        if (reader != null) {
            reader.close();
            reader = null;
        }
    }
}
