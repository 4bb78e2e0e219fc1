package dev.qwtonnx.calib.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.calib.data.AudioFolderSource.AudioSpec;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.testutil.Wav;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** WAV files as a waveform input's samples: windows, channels, sample rates, scale, and what is refused. */
class AudioFolderSourceTest {
    @TempDir
    Path tmp;

    static List<InputSpec> input(long... shape) {
        return List.of(new InputSpec("audio", DataType.FLOAT, shape));
    }

    @Test
    void aFileGivesConsecutiveWindowsOfTheInputsLength() throws IOException {
        double[] tone = Wav.sine(440, 0.5, 16000, 1.3);
        Wav.write(tmp.resolve("a.wav"), 16000, 16, tone);
        AudioFolderSource s = AudioFolderSource.open(tmp, AudioSpec.defaults(), input(1, 8000));
        assertEquals(2, s.size(), "1.3 s at 16 kHz: two whole windows of 8000, the rest dropped");
        for (int w = 0; w < 2; w++) {
            Sample x = s.sample(w);
            assertTrue(x.id().endsWith("a.wav#" + w), x.id());
            assertArrayEquals(new long[] {1, 8000}, x.inputs().get("audio").shape());
            float[] v = x.inputs().get("audio").toFloats();
            for (int i = 0; i < v.length; i++) {
                assertEquals(tone[w * 8000 + i], v[i], 1e-4, "sample " + i + " of window " + w);
            }
        }
        // Read front to back: a window before the reader's position reads the file again, to the same values.
        assertArrayEquals(s.sample(0).inputs().get("audio").toFloats(), s.sample(0).inputs().get("audio").toFloats());
        float[] again = s.sample(0).inputs().get("audio").toFloats();
        assertEquals(tone[123], again[123], 1e-4);
        s.close();
    }

    /** Two channels averaged, 24-bit PCM at 8 kHz resampled to 16 kHz: the tone keeps its pitch, the length doubles. */
    @Test
    void channelsAreAveragedAndTheRateConverted() throws IOException {
        double[] tone = Wav.sine(300, 0.8, 8000, 0.5);
        Wav.write(tmp.resolve("s.wav"), 8000, 24, tone, new double[tone.length]);
        AudioFolderSource s = AudioFolderSource.open(tmp, AudioSpec.defaults(), input(1, -1));
        assertEquals(1, s.size());
        Sample x = s.sample(0);
        assertTrue(x.id().endsWith("s.wav"), x.id());
        float[] v = x.inputs().get("audio").toFloats();
        assertEquals(8000, v.length, 2);
        double[] expected = Wav.sine(300, 0.4, 16000, 0.5);
        double err = 0;
        double energy = 0;
        for (int i = 200; i < 7800; i++) { // the resampler's edges left out
            err += (v[i] - expected[i]) * (v[i] - expected[i]);
            energy += expected[i] * expected[i];
        }
        assertTrue(10 * Math.log10(energy / err) > 30, "SQNR of the resampled tone " + 10 * Math.log10(energy / err));
    }

    @Test
    void aShortFileIsOneWindowPaddedAndTheScaleApplies() throws IOException {
        double[] tone = Wav.sine(100, 0.25, 16000, 0.1);
        Wav.write(tmp.resolve("short.wav"), 16000, 16, tone);
        AudioFolderSource s = AudioFolderSource.open(tmp, new AudioSpec(16000, 4000, 32768f), input(1, 1, -1));
        assertEquals(1, s.size());
        assertArrayEquals(new long[] {1, 1, 4000}, s.sample(0).inputs().get("audio").shape());
        float[] v = s.sample(0).inputs().get("audio").toFloats();
        assertEquals(tone[400] * 32768, v[400], 2);
        for (int i = tone.length; i < v.length; i++) {
            assertEquals(0f, v[i]);
        }
    }

    @Test
    void withoutAWindowLengthAFileIsOneSampleOfAtMostThirtySeconds() throws IOException {
        Wav.write(tmp.resolve("long.wav"), 1000, 16, Wav.sine(50, 0.5, 1000, 40));
        AudioFolderSource s = AudioFolderSource.open(tmp, new AudioSpec(1000, 0, 1f), input(-1));
        assertEquals(1, s.size());
        assertArrayEquals(new long[] {AudioSpec.MAX_SECONDS * 1000}, s.sample(0).inputs().get("audio").shape());
    }

    @Test
    void whatIsNotAWaveformInputOrAudioIsRefusedInOneLine() throws IOException {
        Wav.write(tmp.resolve("a.wav"), 16000, 16, Wav.sine(440, 0.5, 16000, 0.2));
        AudioSpec d = AudioSpec.defaults();
        List<String> messages = List.of(
                assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp, d, List.of(
                        new InputSpec("input", DataType.FLOAT, new long[] {1, -1}),
                        new InputSpec("sr", DataType.INT64, new long[0])))).getMessage(),
                assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp, d, input(1, 76, 32, 1))).getMessage(),
                assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp, d,
                        List.of(new InputSpec("audio", DataType.INT64, new long[] {1, -1})))).getMessage(),
                assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp, new AudioSpec(16000, 512, 1f),
                        input(1, 16000))).getMessage(),
                assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp.resolve("none"), d, input(1, -1)))
                        .getMessage(),
                assertThrows(QwtException.class, () -> new AudioSpec(16000, 0, 0f)).getMessage());
        assertTrue(messages.get(0).contains("takes 2: [input, sr]"), messages.get(0));
        assertTrue(messages.get(1).contains("[1, 76, 32, 1]") && messages.get(1).contains("waveform"), messages.get(1));
        assertTrue(messages.get(2).contains("INT64"), messages.get(2));
        assertTrue(messages.get(3).contains("512 samples does not fit"), messages.get(3));
        assertTrue(messages.get(4).contains("audio folder not found"), messages.get(4));
        assertTrue(messages.get(5).contains("--audio-scale"), messages.get(5));
        Files.writeString(tmp.resolve("b.wav"), "not audio");
        String bad = assertThrows(QwtException.class, () -> AudioFolderSource.open(tmp, d, input(1, -1))).getMessage();
        assertTrue(bad.contains("b.wav: not a WAV file"), bad);
        for (String m : messages) {
            assertTrue(!m.contains("\n"), m);
        }
    }
}
