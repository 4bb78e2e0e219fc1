package dev.qwtonnx.calib.data;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.qwtonnx.QwtException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;

/**
 * How images become a model input: resized to cover width × height and center-cropped, scaled to
 * [0, 1], then (v - mean[c]) / std[c] per channel, in the given channel order and layout.
 *
 * @param width  0 to take it from the model's input shape
 * @param height 0 to take it from the model's input shape
 * @param mean   one value per channel (in RGB order, whatever {@code channels} is), or one for all
 * @param std    likewise; every value must be positive
 */
public record ImageSpec(int width, int height, float[] mean, float[] std, Layout layout, Channels channels) {
    public enum Layout { NCHW, NHWC }

    public enum Channels { RGB, BGR }

    public ImageSpec {
        if (width < 0 || height < 0 || width > 16384 || height > 16384) {
            throw new QwtException("image size must be within 1..16384, got " + width + "x" + height);
        }
        mean = perChannel(mean, "mean");
        std = perChannel(std, "std");
        for (float s : std) {
            if (!(s > 0) || !Float.isFinite(s)) {
                throw new QwtException("image std values must be positive, got " + Arrays.toString(std));
            }
        }
        for (float m : mean) {
            if (!Float.isFinite(m)) {
                throw new QwtException("image mean values must be finite, got " + Arrays.toString(mean));
            }
        }
    }

    private static float[] perChannel(float[] v, String what) {
        if (v == null || (v.length != 1 && v.length != 3)) {
            throw new QwtException("image " + what + " takes 1 or 3 values, got "
                    + (v == null ? "none" : Arrays.toString(v)));
        }
        return v.length == 1 ? new float[] {v[0], v[0], v[0]} : v.clone();
    }

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] std() {
        return std.clone();
    }

    /** Size from the model, no normalisation beyond [0, 1], RGB, NCHW. */
    public static ImageSpec defaults() {
        return new ImageSpec(0, 0, new float[] {0f}, new float[] {1f}, Layout.NCHW, Channels.RGB);
    }

    public ImageSpec withSize(int w, int h) {
        return new ImageSpec(w, h, mean, std, layout, channels);
    }

    public ImageSpec withMean(float[] m) {
        return new ImageSpec(width, height, m, std, layout, channels);
    }

    public ImageSpec withStd(float[] s) {
        return new ImageSpec(width, height, mean, s, layout, channels);
    }

    public ImageSpec withLayout(Layout l) {
        return new ImageSpec(width, height, mean, std, l, channels);
    }

    public ImageSpec withChannels(Channels c) {
        return new ImageSpec(width, height, mean, std, layout, c);
    }

    /** "640x640" → {640, 640}. */
    public static int[] parseSize(String text, String where) {
        String[] parts = text.trim().toLowerCase(Locale.ROOT).split("x");
        try {
            if (parts.length == 2) {
                int w = Integer.parseInt(parts[0].trim());
                int h = Integer.parseInt(parts[1].trim());
                if (w > 0 && h > 0) {
                    return new int[] {w, h};
                }
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new QwtException(where + " takes WIDTHxHEIGHT, e.g. 640x640, got '" + text + "'");
    }

    public static <E extends Enum<E>> E parseEnum(Class<E> type, String text, String where) {
        for (E e : type.getEnumConstants()) {
            if (e.name().equalsIgnoreCase(text.trim())) {
                return e;
            }
        }
        throw new QwtException(where + " takes " + Arrays.toString(type.getEnumConstants()) + ", got '" + text + "'");
    }

    /**
     * This spec with the keys of a JSON file applied: {@code {"size": "224x224" or [224, 224],
     * "mean": [..], "std": [..], "layout": "NCHW", "channels": "RGB"}}; absent keys keep their value.
     */
    public ImageSpec withFile(Path file) {
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new QwtException("cannot read image spec " + file + ": " + e.getMessage(), e);
        } catch (JsonParseException e) {
            throw new QwtException(file + ": not valid JSON (" + String.valueOf(e.getMessage()).replace('\n', ' ') + ")", e);
        }
        if (!root.isJsonObject()) {
            throw new QwtException(file + ": expected a JSON object with size, mean, std, layout, channels");
        }
        ImageSpec s = this;
        try {
            for (Map.Entry<String, JsonElement> e : ((JsonObject) root).entrySet()) {
                String where = file + ": \"" + e.getKey() + "\"";
                JsonElement v = e.getValue();
                switch (e.getKey()) {
                    case "size" -> {
                        int[] wh = v.isJsonArray() ? new int[] {ints(v, where)[0], ints(v, where)[1]}
                                : parseSize(v.getAsString(), where);
                        s = s.withSize(wh[0], wh[1]);
                    }
                    case "mean" -> s = s.withMean(floats(v, where));
                    case "std" -> s = s.withStd(floats(v, where));
                    case "layout" -> s = s.withLayout(parseEnum(Layout.class, v.getAsString(), where));
                    case "channels" -> s = s.withChannels(parseEnum(Channels.class, v.getAsString(), where));
                    default -> throw new QwtException(file + ": unknown key \"" + e.getKey()
                            + "\" (expected size, mean, std, layout, channels)");
                }
            }
        } catch (IllegalStateException | UnsupportedOperationException | NumberFormatException e) {
            throw new QwtException(file + ": a value has the wrong type (" + e.getMessage() + ")", e);
        }
        return s;
    }

    private static float[] floats(JsonElement v, String where) {
        if (!v.isJsonArray()) {
            return new float[] {v.getAsFloat()};
        }
        JsonArray a = v.getAsJsonArray();
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsFloat();
        }
        return out;
    }

    private static int[] ints(JsonElement v, String where) {
        JsonArray a = v.getAsJsonArray();
        if (a.size() != 2) {
            throw new QwtException(where + " takes [width, height]");
        }
        return new int[] {a.get(0).getAsInt(), a.get(1).getAsInt()};
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ImageSpec s && s.width == width && s.height == height && Arrays.equals(s.mean, mean)
                && Arrays.equals(s.std, std) && s.layout == layout && s.channels == channels;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(width, height, Arrays.hashCode(mean), Arrays.hashCode(std), layout, channels);
    }

    @Override
    public String toString() {
        return width + "x" + height + " mean=" + Arrays.toString(mean) + " std=" + Arrays.toString(std) + " " + layout
                + " " + channels;
    }
}
