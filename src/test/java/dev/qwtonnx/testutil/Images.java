package dev.qwtonnx.testutil;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/** Text pages rendered with Debian's fonts, and photos from Debian's opencv-doc, as model inputs. */
public final class Images {
    public static final Path PHOTOS = Path.of("/usr/share/doc/opencv-doc/examples/data");
    private static final float[] MEAN = {0.485f, 0.456f, 0.406f};
    private static final float[] STD = {0.229f, 0.224f, 0.225f};

    private Images() {
    }

    /** A page of text lines in varied fonts, sizes, colours and positions. */
    public static BufferedImage textPage(List<String> lines, int w, int h, long seed) {
        Random rnd = new Random(seed);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        int bg = 200 + rnd.nextInt(56);
        g.setColor(new Color(bg, bg - rnd.nextInt(20), bg - rnd.nextInt(30)));
        g.fillRect(0, 0, w, h);
        String[] families = {"DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Serif", "DejaVu Sans Mono"};
        int y = 10 + rnd.nextInt(20);
        int i = 0;
        while (y < h - 10 && i < lines.size()) {
            int size = 12 + rnd.nextInt(22);
            g.setFont(new Font(families[rnd.nextInt(families.length)], rnd.nextInt(3), size));
            int ink = rnd.nextInt(90);
            g.setColor(new Color(ink, ink, ink + rnd.nextInt(60)));
            y += size;
            g.drawString(lines.get(i++), rnd.nextInt(Math.max(1, w / 5)), y);
            y += 6 + rnd.nextInt(size);
        }
        g.dispose();
        return img;
    }

    /** JPEG photos shipped by opencv-doc, sorted by name. */
    public static List<BufferedImage> photos(int max) throws IOException {
        List<BufferedImage> out = new ArrayList<>();
        if (!Files.isDirectory(PHOTOS)) {
            return out;
        }
        try (Stream<Path> s = Files.list(PHOTOS)) {
            for (Path p : s.filter(f -> f.toString().endsWith(".jpg")).sorted().toList()) {
                if (out.size() >= max) {
                    break;
                }
                BufferedImage img = ImageIO.read(p.toFile());
                if (img != null) {
                    out.add(img);
                }
            }
        }
        return out;
    }

    /** Resized to w×h, scaled to [0,1], normalised with ImageNet mean/std, NCHW float. */
    public static HostTensor toNchw(BufferedImage src, int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.drawImage(src, 0, 0, w, h, null);
        g.dispose();
        float[] v = new float[3 * w * h];
        for (int yy = 0; yy < h; yy++) {
            for (int xx = 0; xx < w; xx++) {
                int rgb = img.getRGB(xx, yy);
                int[] c = {(rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff};
                for (int k = 0; k < 3; k++) {
                    v[k * w * h + yy * w + xx] = (c[k] / 255f - MEAN[k]) / STD[k];
                }
            }
        }
        return HostTensor.ofFloats(new long[] {1, 3, h, w}, v);
    }

    /** Samples for an image model with one input: text pages and photos interleaved. */
    public static List<Sample> samples(String input, List<BufferedImage> images, int w, int h, String prefix) {
        List<Sample> out = new ArrayList<>();
        int i = 0;
        for (BufferedImage img : images) {
            out.add(new Sample(prefix + "-" + (i++), Map.of(input, toNchw(img, w, h))));
        }
        return out;
    }

    /** Calibration and evaluation images for the text detector, disjoint, as the model takes them. */
    public record DetectorData(List<Sample> calib, List<Sample> eval) {
    }

    /**
     * The detector's data: 12 rendered text pages (fortunes, seeded) and 4 photos to calibrate on;
     * {@code evalPages} other pages and the other 4 photos to evaluate on; {@code size}×{@code size}.
     */
    public static DetectorData detectorData(int size, int evalPages) throws IOException {
        List<String> lines = Fortunes.load(7);
        List<BufferedImage> photos = photos(8);
        List<BufferedImage> calib = new ArrayList<>();
        List<BufferedImage> eval = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            calib.add(textPage(lines.subList(i * 20, i * 20 + 20), size, size, i));
        }
        for (int i = 0; i < evalPages; i++) {
            eval.add(textPage(lines.subList(400 + i * 20, 420 + i * 20), size, size, 1000 + i));
        }
        for (int i = 0; i < photos.size(); i++) {
            (i % 2 == 0 ? calib : eval).add(photos.get(i));
        }
        return new DetectorData(samples("x", calib, size, size, "calib"), samples("x", eval, size, size, "eval"));
    }
}
