package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Image folders as calibration samples: resize, center-crop, scale, mean/std, layout, channel order. */
class ImageFolderSourceTest {
    @TempDir
    Path tmp;

    static final List<InputSpec> NCHW_10 = List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 3, 10, 10}));
    static final List<InputSpec> DYNAMIC = List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3, -1, -1}));

    /** 40x20: green in columns 0..7, red in 8..31, blue in 32..39; covering 10x10 keeps only red. */
    static BufferedImage stripes() {
        BufferedImage img = new BufferedImage(40, 20, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.GREEN);
        g.fillRect(0, 0, 8, 20);
        g.setColor(new Color(255, 0, 0));
        g.fillRect(8, 0, 24, 20);
        g.setColor(Color.BLUE);
        g.fillRect(32, 0, 8, 20);
        g.dispose();
        return img;
    }

    Path folder(String name, BufferedImage... images) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        for (int i = 0; i < images.length; i++) {
            ImageIO.write(images[i], "png", dir.resolve("img" + i + ".png").toFile());
        }
        return dir;
    }

    @Test
    void resizesToCoverThenCropsTheCenterAndNormalises() throws IOException {
        Path dir = folder("a", stripes());
        ImageSpec spec = ImageSpec.defaults().withMean(new float[] {0.5f, 0.25f, 0f}).withStd(new float[] {0.5f, 0.25f, 2f});
        ImageFolderSource src = ImageFolderSource.open(dir, spec, NCHW_10);
        assertEquals(10, src.spec().width(), "size comes from the model");
        HostTensor t = src.sample(0).inputs().get("x");
        assertArrayEquals(new long[] {1, 3, 10, 10}, t.shape());
        float[] v = t.toFloats();
        for (int p = 0; p < 100; p++) {
            assertEquals((1f - 0.5f) / 0.5f, v[p], 1e-6, "red plane at " + p);
            assertEquals((0f - 0.25f) / 0.25f, v[100 + p], 1e-6, "green plane at " + p);
            assertEquals(0f, v[200 + p], 1e-6, "blue plane at " + p);
        }
    }

    @Test
    void nhwcAndBgrPermuteTheSameValues() throws IOException {
        BufferedImage img = new BufferedImage(6, 6, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 6; y++) {
            for (int x = 0; x < 6; x++) {
                img.setRGB(x, y, (x * 40) << 16 | (y * 40) << 8 | 200);
            }
        }
        Path dir = folder("b", img);
        List<InputSpec> nhwc = List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 6, 6, 3}));
        List<InputSpec> nchw = List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 3, 6, 6}));
        float[] a = ImageFolderSource.open(dir, ImageSpec.defaults(), nchw).sample(0).inputs().get("x").toFloats();
        float[] b = ImageFolderSource.open(dir, ImageSpec.defaults().withLayout(ImageSpec.Layout.NHWC), nhwc).sample(0)
                .inputs().get("x").toFloats();
        float[] c = ImageFolderSource.open(dir, ImageSpec.defaults().withChannels(ImageSpec.Channels.BGR), nchw).sample(0)
                .inputs().get("x").toFloats();
        for (int p = 0; p < 36; p++) {
            for (int k = 0; k < 3; k++) {
                assertEquals(a[k * 36 + p], b[p * 3 + k], "NHWC pixel " + p + " channel " + k);
                assertEquals(a[k * 36 + p], c[(2 - k) * 36 + p], "BGR pixel " + p + " channel " + k);
            }
        }
        // Same size: no resampling, so values are exact pixel / 255.
        assertEquals(5 * 40 / 255f, a[5], 1e-6);
        assertEquals(200 / 255f, a[72], 1e-6);
    }

    @Test
    void jpegAndPngInNameOrderWithExplicitSize() throws IOException {
        Path dir = folder("c", stripes(), stripes());
        ImageIO.write(stripes(), "jpg", dir.resolve("a.jpg").toFile());
        Files.writeString(dir.resolve("notes.txt"), "not an image");
        Files.write(dir.resolve(".hidden.png"), new byte[] {1, 2, 3});
        ImageFolderSource src = ImageFolderSource.open(dir, ImageSpec.defaults().withSize(16, 8), DYNAMIC);
        assertEquals(3, src.size());
        assertEquals(dir.resolve("a.jpg").toString(), src.sample(0).id());
        assertArrayEquals(new long[] {1, 3, 8, 16}, src.sample(1).inputs().get("x").shape());
        // JPEG is lossy, but the red centre stays red.
        float[] v = src.sample(0).inputs().get("x").toFloats();
        assertEquals(1f, v[8 * 4 + 8], 0.05f);
    }

    static BufferedImage blank(int w, int h) {
        return new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    }

    /**
     * Without an image size, a side the model leaves dynamic follows each image: a recognizer's text lines keep their
     * aspect at its height, a detector's pages their size up to 960, in multiples of 32.
     */
    @Test
    void dynamicSidesFollowEachImage() throws IOException {
        List<InputSpec> lines = List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 3, 48, -1}));
        ImageFolderSource rec = ImageFolderSource.open(folder("lines", blank(100, 50), blank(300, 50), blank(3000, 40)),
                ImageSpec.defaults(), lines);
        assertArrayEquals(new long[] {1, 3, 48, 96}, rec.sample(0).inputs().get("x").shape());
        assertArrayEquals(new long[] {1, 3, 48, 288}, rec.sample(1).inputs().get("x").shape());
        assertArrayEquals(new long[] {1, 3, 48, ImageFolderSource.MAX_SIDE}, rec.sample(2).inputs().get("x").shape());
        ImageFolderSource det = ImageFolderSource.open(folder("pages", blank(1200, 800), blank(100, 70), blank(10, 10)),
                ImageSpec.defaults(), DYNAMIC);
        assertArrayEquals(new long[] {1, 3, 640, 960}, det.sample(0).inputs().get("x").shape());
        assertArrayEquals(new long[] {1, 3, 64, 96}, det.sample(1).inputs().get("x").shape());
        assertArrayEquals(new long[] {1, 3, 32, 32}, det.sample(2).inputs().get("x").shape());
        // The size given wins over the images'.
        assertArrayEquals(new long[] {1, 3, 48, 160}, ImageFolderSource.open(folder("given", blank(1200, 800)),
                ImageSpec.defaults().withSize(160, 48), lines).sample(0).inputs().get("x").shape());
    }

    @Test
    void specFileThenOptions() throws IOException {
        Path f = tmp.resolve("spec.json");
        Files.writeString(f, "{\"size\": [32, 16], \"mean\": [0.485, 0.456, 0.406], \"std\": 0.5, \"layout\": \"nhwc\","
                + " \"channels\": \"BGR\"}");
        ImageSpec s = ImageSpec.defaults().withFile(f);
        assertEquals(new ImageSpec(32, 16, new float[] {0.485f, 0.456f, 0.406f}, new float[] {0.5f}, ImageSpec.Layout.NHWC,
                ImageSpec.Channels.BGR), s);
        Files.writeString(f, "{\"sise\": \"32x16\"}");
        assertOneLine(assertThrows(QwtException.class, () -> ImageSpec.defaults().withFile(f)), "sise", f.toString());
    }

    @Test
    void userErrorsNameWhatIsWrong() throws IOException {
        Path dir = folder("d", stripes());
        assertOneLine(assertThrows(QwtException.class,
                () -> ImageFolderSource.open(dir, ImageSpec.defaults().withSize(20, 10), NCHW_10)), "20x10", "'x'");
        List<InputSpec> two = List.of(NCHW_10.get(0), new InputSpec("scale", DataType.FLOAT, new long[] {1}));
        assertOneLine(assertThrows(QwtException.class, () -> ImageFolderSource.open(dir, ImageSpec.defaults(), two)),
                "scale");
        assertOneLine(assertThrows(QwtException.class, () -> ImageFolderSource.open(dir,
                ImageSpec.defaults().withLayout(ImageSpec.Layout.NHWC), NCHW_10)), "channels", "--layout");
        Files.write(dir.resolve("broken.png"), new byte[] {0x12, 0x34, 0x56});
        assertOneLine(assertThrows(QwtException.class, () -> ImageFolderSource.open(dir, ImageSpec.defaults(), NCHW_10)),
                "broken.png");
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertOneLine(assertThrows(QwtException.class, () -> ImageFolderSource.open(empty, ImageSpec.defaults(), NCHW_10)),
                empty.toString());
        assertOneLine(assertThrows(QwtException.class, () -> ImageSpec.parseSize("640by480", "--image-size")),
                "--image-size", "640by480");
        assertThrows(QwtException.class, () -> ImageSpec.defaults().withStd(new float[] {1f, 0f, 1f}));
        assertThrows(QwtException.class, () -> ImageSpec.defaults().withMean(new float[] {1f, 0f}));
    }

    /** Without a layout chosen: NHWC only where the last axis holds 3 and the second something else known. */
    @Test
    void theLayoutIsTheOneWhoseChannelAxisHoldsThree() {
        ImageSpec.Layout nchw = ImageSpec.Layout.NCHW;
        assertEquals(ImageSpec.Layout.NHWC, ImageFolderSource.layoutOf(
                List.of(new InputSpec("x", DataType.FLOAT, new long[] {-1, 96, 96, 3})), nchw));
        assertEquals(nchw, ImageFolderSource.layoutOf(NCHW_10, nchw));
        assertEquals(nchw, ImageFolderSource.layoutOf(DYNAMIC, nchw));
        assertEquals(nchw, ImageFolderSource.layoutOf(List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, 3, 4, 3})), nchw),
                "both fit: the preferred");
        assertEquals(nchw, ImageFolderSource.layoutOf(List.of(new InputSpec("x", DataType.FLOAT, new long[] {1, -1, -1, 3})), nchw),
                "a channel axis not known: the preferred");
    }
}
