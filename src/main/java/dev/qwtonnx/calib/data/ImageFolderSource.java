package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * A folder of JPEG/PNG images (read with ImageIO, in file-name order, hidden files ignored) as
 * samples of a model with one float image input of shape [1, 3, H, W] (NCHW) or [1, H, W, 3]
 * (NHWC), each resized to cover the spec's size and center-cropped; a side the model leaves dynamic, where the
 * spec gives no size, follows each image ({@link #sizedFor}). Each image is decoded when its sample is needed.
 */
public final class ImageFolderSource implements IndexedSource {
    private final List<Path> files;
    private final ImageSpec spec;
    private final String input;

    private ImageFolderSource(List<Path> files, ImageSpec spec, String input) {
        this.files = files;
        this.spec = spec;
        this.input = input;
    }

    /**
     * The layout an image input takes where the user chose none: NHWC where the model's one input of rank 4 has 3 in
     * its last axis and something else known in its second (a Keras export's {@code [?, 96, 96, 3]}), else
     * {@code preferred}.
     */
    public static ImageSpec.Layout layoutOf(List<InputSpec> inputs, ImageSpec.Layout preferred) {
        if (inputs.size() != 1 || !inputs.get(0).rankKnown() || inputs.get(0).shape().length != 4) {
            return preferred; // open says why such a model takes no images
        }
        long[] s = inputs.get(0).shape();
        return s[3] == 3 && s[1] >= 0 && s[1] != 3 ? ImageSpec.Layout.NHWC : preferred;
    }

    /**
     * Opens the folder for the model's inputs: checks that the model takes exactly one float
     * input of rank 4 with 3 channels where the layout puts them, fills in the image size from the
     * model when the spec leaves it 0, and checks that every file is an image ImageIO can read
     * (from its header only).
     */
    public static ImageFolderSource open(Path dir, ImageSpec spec, List<InputSpec> inputs) {
        InputSpec in = SampleFolders.onlyFloatInput(inputs, "image");
        boolean nchw = spec.layout() == ImageSpec.Layout.NCHW;
        long[] s = in.rankKnown() ? in.shape() : new long[] {-1, -1, -1, -1};
        if (s.length != 4) {
            throw new QwtException("model input '" + in.name() + "' has shape " + in.shapeText()
                    + "; images make rank-4 inputs (" + spec.layout() + ")");
        }
        long c = nchw ? s[1] : s[3];
        long h = nchw ? s[2] : s[1];
        long w = nchw ? s[3] : s[2];
        if (c >= 0 && c != 3) {
            throw new QwtException("model input '" + in.name() + "' has shape " + in.shapeText() + ": " + c
                    + " channels where layout " + spec.layout() + " puts them; images give 3 (try the other --layout)");
        }
        if (s[0] > 1) {
            throw new QwtException("model input '" + in.name() + "' has a fixed batch of " + s[0]
                    + "; image calibration feeds one image per run");
        }
        ImageSpec sized = spec;
        if (spec.width() == 0 || spec.height() == 0) {
            // A side the model leaves dynamic follows each image (see sizedFor); the others are the model's.
            sized = spec.withSize((int) Math.max(w, 0), (int) Math.max(h, 0));
        } else if ((w >= 0 && w != spec.width()) || (h >= 0 && h != spec.height())) {
            throw new QwtException("image size " + spec.width() + "x" + spec.height() + " does not fit model input '"
                    + in.name() + "' of shape " + in.shapeText() + " (" + spec.layout() + ")");
        }
        List<Path> files = list(dir);
        for (Path f : files) {
            checkReadable(f);
        }
        return new ImageFolderSource(files, sized, in.name());
    }

    static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return !n.startsWith(".") && (n.endsWith(".jpg") || n.endsWith(".jpeg") || n.endsWith(".png"));
    }

    private static List<Path> list(Path dir) {
        return SampleFolders.files(dir, "image", ImageFolderSource::isImage, ".jpg, .jpeg or .png images");
    }

    private static void checkReadable(Path f) {
        try (ImageInputStream in = ImageIO.createImageInputStream(f.toFile())) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) {
                throw new QwtException(f + ": not an image ImageIO can read (JPEG or PNG)");
            }
            ImageReader r = readers.next();
            try {
                r.setInput(in);
                if (r.getWidth(0) <= 0 || r.getHeight(0) <= 0) {
                    throw new QwtException(f + ": image has no pixels");
                }
            } finally {
                r.dispose();
            }
        } catch (IOException e) {
            throw new QwtException(f + ": cannot read image: " + e.getMessage(), e);
        }
    }

    public ImageSpec spec() {
        return spec;
    }

    @Override
    public int size() {
        return files.size();
    }

    @Override
    public Sample sample(int index) {
        Path f = files.get(index);
        BufferedImage img;
        try {
            img = ImageIO.read(f.toFile());
        } catch (IOException e) {
            throw new QwtException(f + ": cannot decode image: " + e.getMessage(), e);
        }
        if (img == null) {
            throw new QwtException(f + ": not an image ImageIO can read (JPEG or PNG)");
        }
        return new Sample(f.toString(), Map.of(input, toTensor(img, sizedFor(spec, img.getWidth(), img.getHeight()))));
    }

    /**
     * The longest side an image keeps where the model leaves both sides dynamic: PaddleOCR's detector's default
     * limit, beyond which a page's text is no easier to find and its activations only larger.
     */
    static final int MAX_SIDE = 960;
    /**
     * Sides that follow the image are multiples of this: a CNN's feature pyramid halves them five times and adds or
     * joins the levels again, which only sizes divisible by 32 allow.
     */
    static final int STEP = 32;

    /**
     * {@code spec} with a size for an image of {@code width} × {@code height} where it leaves a side 0 (dynamic in
     * the model): both sides dynamic, the image's own, scaled down to at most {@link #MAX_SIDE}; one, the side that
     * keeps the image's aspect at the other's size (a text line at the recognizer's height), at most
     * {@link #MAX_SIDE}; either rounded to a multiple of {@link #STEP}, so that covering it crops at most half a
     * step of the image.
     */
    static ImageSpec sizedFor(ImageSpec spec, int width, int height) {
        if (spec.width() > 0 && spec.height() > 0) {
            return spec;
        }
        if (spec.width() == 0 && spec.height() == 0) {
            double scale = Math.min(1.0, (double) MAX_SIDE / Math.max(width, height));
            return spec.withSize(step(width * scale), step(height * scale));
        }
        return spec.width() == 0
                ? spec.withSize(Math.min(step((double) spec.height() * width / height), MAX_SIDE), spec.height())
                : spec.withSize(spec.width(), Math.min(step((double) spec.width() * height / width), MAX_SIDE));
    }

    private static int step(double side) {
        return (int) Math.max(STEP, Math.round(side / STEP) * STEP);
    }

    /** Resizes to cover the target, center-crops, scales to [0, 1] and normalises, as {@code spec} says. */
    public static HostTensor toTensor(BufferedImage src, ImageSpec spec) {
        int w = spec.width();
        int h = spec.height();
        double scale = Math.max((double) w / src.getWidth(), (double) h / src.getHeight());
        int sw = Math.max(w, (int) Math.round(src.getWidth() * scale));
        int sh = Math.max(h, (int) Math.round(src.getHeight() * scale));
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            // Transparent pixels are composited on black.
            g.drawImage(src, -(sw - w) / 2, -(sh - h) / 2, sw, sh, Color.BLACK, null);
        } finally {
            g.dispose();
        }
        float[] mean = spec.mean();
        float[] std = spec.std();
        boolean bgr = spec.channels() == ImageSpec.Channels.BGR;
        boolean nchw = spec.layout() == ImageSpec.Layout.NCHW;
        int[] rgb = img.getRGB(0, 0, w, h, null, 0, w);
        float[] v = new float[3 * w * h];
        int plane = w * h;
        for (int p = 0; p < plane; p++) {
            int px = rgb[p];
            for (int k = 0; k < 3; k++) {
                int shift = 16 - 8 * k;
                float x = (((px >> shift) & 0xff) / 255f - mean[k]) / std[k];
                int c = bgr ? 2 - k : k;
                v[nchw ? c * plane + p : p * 3 + c] = x;
            }
        }
        long[] shape = nchw ? new long[] {1, 3, h, w} : new long[] {1, h, w, 3};
        return HostTensor.ofFloats(shape, v);
    }
}
