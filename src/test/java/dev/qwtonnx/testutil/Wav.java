package dev.qwtonnx.testutil;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import javax.sound.sampled.AudioFileFormat;
import javax.sound.sampled.AudioFormat;
import javax.sound.sampled.AudioInputStream;
import javax.sound.sampled.AudioSystem;

/** WAV files of known content for the audio calibration tests. */
public final class Wav {
    private Wav() {
    }

    /** A sine of {@code hz} and amplitude {@code amp} at {@code rate}, {@code seconds} long. */
    public static double[] sine(double hz, double amp, int rate, double seconds) {
        double[] v = new double[(int) Math.round(rate * seconds)];
        for (int i = 0; i < v.length; i++) {
            v[i] = amp * Math.sin(2 * Math.PI * hz * i / rate);
        }
        return v;
    }

    /** A WAV file of signed little-endian PCM of {@code bits}, channel c of each frame from {@code channels[c]}. */
    public static Path write(Path f, int rate, int bits, double[]... channels) throws IOException {
        int bytes = bits / 8;
        int frames = channels[0].length;
        ByteBuffer b = ByteBuffer.allocate(frames * channels.length * bytes).order(ByteOrder.LITTLE_ENDIAN);
        long full = (1L << (bits - 1)) - 1;
        for (int i = 0; i < frames; i++) {
            for (double[] c : channels) {
                long q = Math.round(c[i] * full);
                for (int k = 0; k < bytes; k++) {
                    b.put((byte) (q >> (8 * k)));
                }
            }
        }
        AudioFormat format = new AudioFormat(rate, bits, channels.length, true, false);
        try (AudioInputStream in = new AudioInputStream(new ByteArrayInputStream(b.array()), format, frames)) {
            AudioSystem.write(in, AudioFileFormat.Type.WAVE, f.toFile());
        }
        return f;
    }
}
