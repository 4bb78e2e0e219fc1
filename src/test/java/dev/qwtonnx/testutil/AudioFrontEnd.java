package dev.qwtonnx.testutil;

import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A small audio front-end as wake-word and speech models use it: the STFT as two Convs with real
 * DFT kernels (cos and sin under a Hann window), power re² + im², a mel filterbank MatMul with
 * triangular filters, log(x + 1e-6); and voiced-like audio to calibrate it on (harmonics of a
 * gliding pitch, syllable envelopes with pauses, a faint noise floor), seeded.
 */
public final class AudioFrontEnd {
    public static final int RATE = 16000;
    public static final int FFT = 128;
    public static final int HOP = 64;
    public static final int MELS = 16;
    public static final int SAMPLES = 4096;

    private AudioFrontEnd() {
    }

    /** audio[1, 1, SAMPLES] → mel[1, frames, MELS]. */
    public static Model model() {
        int bins = FFT / 2 + 1;
        float[] re = new float[bins * FFT];
        float[] im = new float[bins * FFT];
        for (int k = 0; k < bins; k++) {
            for (int n = 0; n < FFT; n++) {
                double w = 0.5 - 0.5 * Math.cos(2 * Math.PI * n / FFT);
                re[k * FFT + n] = (float) (w * Math.cos(2 * Math.PI * k * n / FFT));
                im[k * FFT + n] = (float) (-w * Math.sin(2 * Math.PI * k * n / FFT));
            }
        }
        ModelBuilder b = new ModelBuilder(13).input("audio", OrtTestSupport.FLOAT, 1, 1, SAMPLES)
                .output("mel", OrtTestSupport.FLOAT, 1, -1, MELS);
        String r = b.node("Conv", List.of("audio", b.init("stft_cos", new long[] {bins, 1, FFT}, re)), "re",
                Nodes.intsAttribute("strides", HOP));
        String i = b.node("Conv", List.of("audio", b.init("stft_sin", new long[] {bins, 1, FFT}, im)), "im",
                Nodes.intsAttribute("strides", HOP));
        String power = b.node("Add", List.of(b.node("Mul", List.of(r, r), "re2"), b.node("Mul", List.of(i, i), "im2")),
                "power");
        String frames = b.node("Transpose", List.of(power), "frames", Nodes.intsAttribute("perm", 0, 2, 1));
        String mel = b.node("MatMul", List.of(frames, b.init("mel_filters", new long[] {bins, MELS}, melFilters(bins))),
                "mel_power");
        String eps = b.init("eps", new long[] {}, new float[] {1e-6f});
        b.node("Log", List.of(b.node("Add", List.of(mel, eps), "mel_eps")), "mel");
        return b.build();
    }

    /** Triangular filters evenly spaced on the mel scale from 0 Hz to Nyquist, [bins, MELS]. */
    static float[] melFilters(int bins) {
        double top = mel(RATE / 2.0);
        double[] edges = new double[MELS + 2];
        for (int m = 0; m < edges.length; m++) {
            edges[m] = hz(top * m / (MELS + 1)) * FFT / RATE; // in bins
        }
        float[] w = new float[bins * MELS];
        for (int m = 0; m < MELS; m++) {
            for (int k = 0; k < bins; k++) {
                double up = (k - edges[m]) / (edges[m + 1] - edges[m]);
                double down = (edges[m + 2] - k) / (edges[m + 2] - edges[m + 1]);
                w[k * MELS + m] = (float) Math.max(0, Math.min(up, down));
            }
        }
        return w;
    }

    static double mel(double hz) {
        return 2595 * Math.log10(1 + hz / 700);
    }

    static double hz(double mel) {
        return 700 * (Math.pow(10, mel / 2595) - 1);
    }

    /** {@code count} clips of SAMPLES values in [-1, 1] as one input named "audio" each. */
    public static List<Map<String, HostTensor>> clips(long seed, int count) {
        Random rnd = new Random(seed);
        List<Map<String, HostTensor>> out = new ArrayList<>();
        for (int c = 0; c < count; c++) {
            float[] x = new float[SAMPLES];
            double f0 = 90 + 200 * rnd.nextDouble();
            double glide = (rnd.nextDouble() - 0.5) * 100;
            double phase = 0;
            int syllable = 600 + rnd.nextInt(900);
            double loud = 0.1 + 0.6 * rnd.nextDouble();
            for (int n = 0; n < SAMPLES; n++) {
                double f = f0 + glide * n / SAMPLES;
                phase += 2 * Math.PI * f / RATE;
                int pos = n % (2 * syllable);
                double env = pos < syllable ? Math.sin(Math.PI * pos / syllable) : 0; // a pause after each syllable
                double v = 0;
                for (int h = 1; h <= 12; h++) {
                    v += Math.sin(h * phase) / h;
                }
                x[n] = (float) Math.max(-1, Math.min(1, loud * env * v * 0.5 + 2e-4 * rnd.nextGaussian()));
            }
            out.add(Map.of("audio", HostTensor.ofFloats(new long[] {1, 1, SAMPLES}, x)));
        }
        return out;
    }

    public static CalibrationSource source(long seed, int count) {
        List<Sample> s = new ArrayList<>();
        List<Map<String, HostTensor>> clips = clips(seed, count);
        for (int i = 0; i < clips.size(); i++) {
            s.add(new Sample("clip-" + seed + "-" + i, clips.get(i)));
        }
        return CalibrationSources.ofList(s);
    }
}
