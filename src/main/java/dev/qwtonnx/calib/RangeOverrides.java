package dev.qwtonnx.calib;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Per-tensor choices of range method, read from a JSON file:
 *
 * <pre>
 * { "tensors": { "/encoder/layer.0/Add_output_0": "percentile" },
 *   "ops":     { "MatMul": "mse", "Conv": "minmax" } }
 * </pre>
 *
 * A tensor named under "tensors" takes that method. Otherwise the first entry of "ops" (in file
 * order) naming the op type of a node that reads the tensor applies. Otherwise the run's method.
 */
public record RangeOverrides(Map<String, RangeMethod> tensors, Map<String, RangeMethod> ops) {
    public static final RangeOverrides NONE = new RangeOverrides(Map.of(), Map.of());

    public RangeOverrides {
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(tensors, "tensors")));
        ops = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(ops, "ops")));
    }

    public boolean isEmpty() {
        return tensors.isEmpty() && ops.isEmpty();
    }

    public static RangeOverrides read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new QwtException("cannot read range-method overrides " + file + ": " + e.getMessage(), e);
        }
        JsonElement root;
        try {
            root = JsonParser.parseString(text);
        } catch (JsonParseException e) {
            throw new QwtException(file + ": not valid JSON (" + oneLine(e.getMessage()) + ")", e);
        }
        if (!root.isJsonObject()) {
            throw new QwtException(file + ": expected a JSON object with \"tensors\" and/or \"ops\"");
        }
        Map<String, RangeMethod> tensors = new LinkedHashMap<>();
        Map<String, RangeMethod> ops = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : root.getAsJsonObject().entrySet()) {
            switch (e.getKey()) {
                case "tensors" -> readMap(file, "tensors", e.getValue(), tensors);
                case "ops" -> readMap(file, "ops", e.getValue(), ops);
                default -> throw new QwtException(file + ": unknown key \"" + e.getKey()
                        + "\" (expected \"tensors\" or \"ops\")");
            }
        }
        return new RangeOverrides(tensors, ops);
    }

    private static void readMap(Path file, String key, JsonElement v, Map<String, RangeMethod> into) {
        if (!v.isJsonObject()) {
            throw new QwtException(file + ": \"" + key + "\" must be an object of name -> method");
        }
        JsonObject o = v.getAsJsonObject();
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            JsonElement m = e.getValue();
            String name = m.isJsonPrimitive() && m.getAsJsonPrimitive().isString() ? m.getAsString() : String.valueOf(m);
            into.put(e.getKey(), parseMethod(name, file + ": \"" + key + "\" entry \"" + e.getKey() + "\""));
        }
    }

    /** The method named {@code text} (case-insensitive); {@code where} names the source in the error. */
    public static RangeMethod parseMethod(String text, String where) {
        for (RangeMethod m : RangeMethod.values()) {
            if (m.label().equalsIgnoreCase(text.trim())) {
                return m;
            }
        }
        throw new QwtException(where + " takes minmax, percentile, entropy or mse, got '" + text + "'");
    }

    /**
     * The method of each calibrated tensor. A tensor override naming a tensor that is not
     * calibrated is an error (most likely a typo).
     */
    public Map<String, RangeMethod> resolve(GraphProto graph, Collection<String> calibrated, RangeMethod fallback) {
        for (String t : tensors.keySet()) {
            if (!calibrated.contains(t)) {
                throw new QwtException("range-method override names tensor '" + t
                        + "', which is not an activation of a quantized layer");
            }
        }
        GraphEditor g = new GraphEditor(graph);
        Map<String, RangeMethod> out = new LinkedHashMap<>();
        for (String t : calibrated) {
            RangeMethod m = tensors.get(t);
            if (m == null && !ops.isEmpty()) {
                Collection<NodeProto> readers = g.consumers(t);
                for (Map.Entry<String, RangeMethod> rule : ops.entrySet()) {
                    if (readers.stream().anyMatch(n -> n.getOpType().equals(rule.getKey()))) {
                        m = rule.getValue();
                        break;
                    }
                }
            }
            out.put(t, m == null ? fallback : m);
        }
        return out;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ');
    }

    @Override
    public String toString() {
        return "{tensors=" + tensors.size() + ", ops=" + ops + "}";
    }
}
