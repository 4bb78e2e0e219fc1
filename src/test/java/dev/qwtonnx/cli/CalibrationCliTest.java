package dev.qwtonnx.cli;

import static dev.qwtonnx.cli.CliTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.testutil.WordTokenizer;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The calibration options of the command line: image folders, text files, range methods. */
class CalibrationCliTest {
    @TempDir
    Path tmp;

    static final String MODEL = ExampleData.DIR.resolve("cnn.onnx").toString();

    Path images(int n) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("photos"));
        Random r = new Random(3);
        for (int i = 0; i < n; i++) {
            BufferedImage img = new BufferedImage(40 + 7 * i, 30 + 5 * i, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = img.createGraphics();
            for (int k = 0; k < 12; k++) {
                g.setColor(new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256)));
                g.fillOval(r.nextInt(40), r.nextInt(30), 4 + r.nextInt(20), 4 + r.nextInt(20));
            }
            g.dispose();
            ImageIO.write(img, i % 2 == 0 ? "png" : "jpg", dir.resolve("img" + i + (i % 2 == 0 ? ".png" : ".jpg")).toFile());
        }
        return dir;
    }

    /** input_ids [1, S] → Gather(embedding [9, 8]) → MatMul(8 → 4) → y. */
    Path textModel() throws IOException {
        ModelBuilder b = new ModelBuilder(5, 13).input("input_ids", TensorProto.DataType.INT64_VALUE, 1, -1)
                .output("y", TensorProto.DataType.FLOAT_VALUE, 1, -1, 4);
        String e = b.node("Gather", List.of(b.randomInit("embedding", 1.0, WordTokenizer.VOCAB, 8), "input_ids"), "e");
        b.node("MatMul", List.of(e, b.randomInit("w", 0.3, 8, 4)), "y");
        Path f = tmp.resolve("text.onnx");
        ModelIO.save(b.build(), f, null);
        return f;
    }

    static String options(Path model) {
        Model m = ModelIO.load(model);
        return m.proto().getMetadataPropsList().stream().filter(p -> p.getKey().equals("qwt.options"))
                .map(StringStringEntryProto::getValue).findFirst().orElseThrow();
    }

    @Test
    void imageFolderWithPercentileRanges() throws IOException {
        Path out = tmp.resolve("cnn-int8.onnx");
        CliTest.Run r = cli(MODEL, out.toString(), "--calib-images", images(6).toString(), CliTest.INT8_ANYWAY, "--mean", "0.485,0.456,0.406",
                "--std", "0.229,0.224,0.225", "--layout", "NCHW", "--calibrate", "percentile", "--percentile", "99.9");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("quantized 4 layers"), r.out());
        assertTrue(r.out().contains("fidelity on 1 held-out samples"), r.out());
        assertTrue(options(out).contains("calibrate=percentile@99.9"), options(out));
    }

    /** x [1, 1, 1600] → Conv(1 → 4, kernel 16, stride 8) → y: a waveform input, as an audio front-end takes. */
    Path audioModel() throws IOException {
        ModelBuilder b = new ModelBuilder(7, 13).input("x", TensorProto.DataType.FLOAT_VALUE, 1, 1, 1600)
                .output("y", TensorProto.DataType.FLOAT_VALUE, 1, 4, -1);
        b.node("Conv", List.of("x", b.randomInit("w", 0.3, 4, 1, 16), b.randomInit("b", 0.1, 4)), "y",
                dev.qwtonnx.model.Nodes.intsAttribute("strides", 8));
        Path f = tmp.resolve("audio.onnx");
        ModelIO.save(b.build(), f, null);
        return f;
    }

    /**
     * A Keras export takes NHWC images ({@code [?, 24, 24, 3]}, a Transpose before its first Conv): without
     * {@code --layout} the images are laid out as its input's channel axis says, where the run used to refuse the model
     * and ask for the other layout; a layout given is kept, and refused where it does not fit.
     */
    @Test
    void imagesTakeTheLayoutWhoseChannelAxisTheModelGivesThree() throws IOException {
        ModelBuilder b = new ModelBuilder(5, 13).input("input_1", TensorProto.DataType.FLOAT_VALUE, -1, 24, 24, 3)
                .output("y", TensorProto.DataType.FLOAT_VALUE, -1, 8, 24, 24);
        b.node("Transpose", "nchw", List.of("input_1"), List.of("t"), dev.qwtonnx.model.Nodes.intsAttribute("perm", 0, 3, 1, 2));
        b.node("Conv", "conv", List.of("t", b.randomInit("w", 0.3, 8, 3, 3, 3), b.randomInit("b", 0.1, 8)), List.of("y"),
                dev.qwtonnx.model.Nodes.intsAttribute("pads", 1, 1, 1, 1));
        Path model = tmp.resolve("keras.onnx");
        ModelIO.save(b.build(), model, null);
        Path photos = images(6);
        CliTest.Run r = cli(model.toString(), tmp.resolve("keras-int8.onnx").toString(), "--calib-images", photos.toString(),
                CliTest.INT8_ANYWAY, "--no-report");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("quantized 1 layer"), r.out());
        CliTest.Run asked = cli(model.toString(), tmp.resolve("nchw.onnx").toString(), "--calib-images", photos.toString(),
                "--layout", "NCHW");
        assertEquals(2, asked.code(), asked.err());
        assertTrue(asked.err().contains("try the other --layout"), asked.err());
    }

    @Test
    void audioFolderInWindowsOfTheInputsLength() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("clips"));
        for (int i = 0; i < 3; i++) { // 1.0, 1.5 and 2.0 s at 8 kHz, resampled to 16 kHz: 10, 15 and 20 windows of 1600
            dev.qwtonnx.testutil.Wav.write(dir.resolve("clip" + i + ".wav"), 8000, 16,
                    dev.qwtonnx.testutil.Wav.sine(200 + 100 * i, 0.5, 8000, 1.0 + 0.5 * i));
        }
        Path out = tmp.resolve("audio-int8.onnx");
        CliTest.Run r = cli(audioModel().toString(), out.toString(), "--calib-audio", dir.toString(), CliTest.INT8_ANYWAY,
                "--holdout", "0.2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("quantized 1 layer"), r.out());
        assertTrue(r.out().contains("fidelity on 9 held-out samples"), r.out());
        CliTest.Run misused = cli(audioModel().toString(), tmp.resolve("x.onnx").toString(), "--calib", dir.toString(),
                "--sample-rate", "8000");
        assertEquals(2, misused.code());
        assertEquals("qwt-onnx: error: --sample-rate, --window and --audio-scale are for --calib-audio", misused.err().strip());
    }

    /** verify and compensate read their samples as quantize does: images for one, audio for the other. */
    @Test
    void verifyAndCompensateTakeEverySource() throws IOException {
        Path photos = images(6);
        Path cnn = tmp.resolve("cnn-int8.onnx");
        assertEquals(0, cli(MODEL, cnn.toString(), "--calib-images", photos.toString(), CliTest.INT8_ANYWAY,
                "--no-report").code());
        CliTest.Run verified = cli("verify", MODEL, cnn.toString(), "--calib-images", photos.toString(), "--runs", "0");
        assertEquals(0, verified.code(), verified.err());
        assertTrue(verified.out().contains("output logits: cosine mean"), verified.out());

        Path clips = Files.createDirectories(tmp.resolve("clips"));
        for (int i = 0; i < 4; i++) {
            dev.qwtonnx.testutil.Wav.write(clips.resolve("clip" + i + ".wav"), 16000, 16,
                    dev.qwtonnx.testutil.Wav.sine(150 + 50 * i, 0.5, 16000, 1.0));
        }
        Path model = audioModel();
        Path int8 = tmp.resolve("audio-int8.onnx");
        assertEquals(0, cli(model.toString(), int8.toString(), "--calib-audio", clips.toString(), CliTest.INT8_ANYWAY,
                "--method", "none", "--no-report").code());
        // 4 clips of 10 windows each, 20 of them taken: 4 held out.
        CliTest.Run compensated = cli("compensate", model.toString(), int8.toString(), tmp.resolve("comp.onnx").toString(),
                "--calib-audio", clips.toString(), "--limit", "20");
        assertEquals(0, compensated.code(), compensated.err());
        assertTrue(compensated.out().contains("of 1 quantized layers"), compensated.out());
        assertTrue(compensated.out().contains("fidelity on 4 held-out samples"), compensated.out());
    }

    @Test
    void textFileWithLimitAndShuffleIsReproducible() throws IOException {
        Path model = textModel();
        Path text = tmp.resolve("s.txt");
        Files.writeString(text, "the cat sat\non the mat\nthe mat\ncat\n\nthe cat sat on the mat\nmat mat mat\nsat on\n");
        Path tok = WordTokenizer.write(tmp);
        Path a = tmp.resolve("a.onnx");
        Path b = tmp.resolve("b.onnx");
        for (Path out : List.of(a, b)) {
            CliTest.Run r = cli(model.toString(), out.toString(), "--calib-text", text.toString(), CliTest.INT8_ANYWAY, "--tokenizer",
                    tok.toString(), "--max-length", "16", "--limit", "5", "--shuffle", "--calibrate", "mse");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("quantized 1 layer ("), r.out());
            assertTrue(r.out().contains("fidelity on 1 held-out samples"), r.out());
        }
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)));
    }

    @Test
    void userErrorsExitWithTwoAndOneLine() throws IOException {
        Path out = tmp.resolve("o.onnx");
        Path photos = images(2);
        String calib = ExampleData.DIR.resolve("calib").toString();
        assertUserError(cli(MODEL, out.toString()), out, "--calib-images");
        assertUserError(cli(MODEL, out.toString(), "--calib", calib, "--calib-images", photos.toString()), out, "only one");
        assertUserError(cli(MODEL, out.toString(), "--calib", calib, "--calibrate", "kl"), out, "--calibrate");
        assertUserError(cli(MODEL, out.toString(), "--calib", calib, "--calibrate", "percentile", "--percentile", "0"),
                out, "percentile");
        assertUserError(cli(MODEL, out.toString(), "--calib", calib, "--mean", "0.5"), out, "--calib-images");
        assertUserError(cli(MODEL, out.toString(), "--calib-images", photos.toString(), "--image-size", "32x32"), out,
                "32x32");
        assertUserError(cli(MODEL, out.toString(), "--calib-images", photos.toString(), "--layout", "CHW"), out,
                "--layout");
        Path overrides = tmp.resolve("r.json");
        Files.writeString(overrides, "{\"tensors\": {\"nope\": \"mse\"}}");
        assertUserError(cli(MODEL, out.toString(), "--calib", calib, "--range-overrides", overrides.toString()), out,
                "'nope'");
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "the cat\n");
        assertUserError(cli(MODEL, out.toString(), "--calib-text", text.toString()), out, "--tokenizer");
        assertUserError(cli(MODEL, out.toString(), "--calib-text", text.toString(), "--tokenizer",
                WordTokenizer.write(tmp).toString()), out, "'x'");
    }

    private static void assertUserError(CliTest.Run r, Path out, String mentions) {
        assertEquals(Main.USER_ERROR, r.code(), r.err());
        String[] lines = r.err().strip().split("\n");
        assertEquals(1, lines.length, r.err());
        assertTrue(r.err().contains(mentions), "'" + mentions + "' not in: " + r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        assertFalse(Files.exists(out), "output written despite the error");
    }
}
