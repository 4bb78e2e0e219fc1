package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Fixes each graph input's symbolic or unknown dimensions to the value every sample the run was
 * given agrees on, for a target that takes static shapes only (QNN HTP, NNAPI). A dimension the
 * samples disagree on stays dynamic, with a rejection naming the input and the dimension (the rule
 * checker then reports it). A graph output dimension with the same {@code dim_param} as a fixed
 * input dimension takes its value: ONNX gives a dim_param one value across the graph. The rest of
 * the shapes ORT infers itself ({@link DropValueInfo} leaves no hint to contradict it).
 *
 * <p>What ORT's users do by hand for these providers, from the sizes they deploy with:
 * {@code python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME --dim_value N} or
 * {@code --input_name NAME --input_shape ...} (ORT docs, tutorials/mobile/helpers/make-dynamic-shape-fixed).
 * Here the sizes are the calibration samples', since the model is calibrated and measured at them.
 * The dimensions fixed are recorded in the model's metadata under {@link #METADATA_KEY}.
 */
public final class FixInputShapes implements Pass {
    public static final String NAME = "fix-input-shapes";
    /** Model metadata key listing the input shapes this pass fixed. */
    public static final String METADATA_KEY = "qwt.fixed-input-shapes";

    private final Map<String, List<long[]>> observed;

    /**
     * @param observed by graph input name, the shape it had in each sample (every sample, or each
     *                 distinct shape once); an input with no entry keeps its dynamic dimensions
     */
    public FixInputShapes(Map<String, List<long[]>> observed) {
        Map<String, List<long[]>> copy = new LinkedHashMap<>();
        observed.forEach((k, v) -> copy.put(k, v.stream().map(long[]::clone).toList()));
        this.observed = Map.copyOf(copy);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        GraphProto g = model.graph();
        Set<String> constants = new HashSet<>();
        g.getInitializerList().forEach(t -> constants.add(t.getName()));
        List<Rejection> rejections = new ArrayList<>();
        Map<String, Long> params = new HashMap<>();
        Set<String> conflicting = new HashSet<>();
        Map<String, Disagreement> disagreements = new LinkedHashMap<>();
        List<String> fixed = new ArrayList<>();
        GraphProto.Builder b = g.toBuilder();
        for (int i = 0; i < b.getInputCount(); i++) {
            ValueInfoProto v = b.getInput(i);
            if (constants.contains(v.getName()) || !v.getType().hasTensorType()) {
                continue;
            }
            TypeProto.Tensor tt = v.getType().getTensorType();
            List<long[]> shapes = observed.getOrDefault(v.getName(), List.of());
            if (!tt.hasShape()) {
                long[] one = agreedShape(shapes);
                if (one == null) {
                    rejections.add(new Rejection(NAME, "input '" + v.getName() + "'", shapes.isEmpty()
                            ? "no sample gives it, and the model states no shape" : "its shape is not stated and "
                            + "the samples disagree on its rank or size" + HINT));
                    continue;
                }
                TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
                for (long d : one) {
                    s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
                }
                b.setInput(i, withShape(v, s.build()));
                fixed.add(v.getName() + "=" + text(one));
                continue;
            }
            TensorShapeProto.Builder s = tt.getShape().toBuilder();
            boolean changed = false;
            for (int d = 0; d < s.getDimCount(); d++) {
                TensorShapeProto.Dimension dim = s.getDim(d);
                if (dim.hasDimValue() && dim.getDimValue() > 0) {
                    continue;
                }
                String where = v.getName() + "[" + d + "]";
                long[] values = valuesAt(shapes, d, s.getDimCount());
                if (values == null) {
                    rejections.add(new Rejection(NAME, "input " + where, shapes.isEmpty() ? "no sample gives this "
                            + "input" : "the samples' rank differs from the model's " + s.getDimCount()));
                    continue;
                }
                if (values[0] != values[1]) {
                    // One line per dimension name: the inputs that share it disagree alike (a sequence length).
                    String key = dim.getDimParam().isEmpty() ? where : dim.getDimParam();
                    disagreements.computeIfAbsent(key, k -> new Disagreement(dim.getDimParam())).add(where, values);
                    if (!dim.getDimParam().isEmpty()) {
                        conflicting.add(dim.getDimParam());
                    }
                    continue;
                }
                if (!dim.getDimParam().isEmpty()) {
                    Long before = params.put(dim.getDimParam(), values[0]);
                    if (before != null && before != values[0]) {
                        conflicting.add(dim.getDimParam());
                    }
                }
                s.setDim(d, TensorShapeProto.Dimension.newBuilder().setDimValue(values[0])
                        .setDenotation(dim.getDenotation()));
                changed = true;
            }
            if (changed) {
                b.setInput(i, withShape(v, s.build()));
                fixed.add(v.getName() + "=" + shapeText(s));
            }
        }
        for (Disagreement x : disagreements.values()) {
            rejections.add(new Rejection(NAME, "input dimension " + String.join(", ", x.where)
                    + (x.param.isEmpty() ? "" : " (" + x.param + ")"), "the samples disagree (" + x.lo + " to " + x.hi
                    + "), so it stays dynamic" + HINT));
        }
        if (fixed.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        conflicting.forEach(params::remove);
        for (int i = 0; i < b.getOutputCount(); i++) {
            ValueInfoProto v = b.getOutput(i);
            if (!v.getType().hasTensorType() || !v.getType().getTensorType().hasShape()) {
                continue;
            }
            TensorShapeProto.Builder s = v.getType().getTensorType().getShape().toBuilder();
            boolean changed = false;
            for (int d = 0; d < s.getDimCount(); d++) {
                Long value = params.get(s.getDim(d).getDimParam());
                if (!s.getDim(d).getDimParam().isEmpty() && value != null) {
                    s.setDim(d, TensorShapeProto.Dimension.newBuilder().setDimValue(value)
                            .setDenotation(s.getDim(d).getDenotation()));
                    changed = true;
                }
            }
            if (changed) {
                b.setOutput(i, withShape(v, s.build()));
            }
        }
        ModelProto.Builder m = model.proto().toBuilder().setGraph(b);
        for (int i = m.getMetadataPropsCount() - 1; i >= 0; i--) {
            if (m.getMetadataProps(i).getKey().equals(METADATA_KEY)) {
                m.removeMetadataProps(i);
            }
        }
        m.addMetadataProps(StringStringEntryProto.newBuilder().setKey(METADATA_KEY)
                .setValue(String.join(" ", fixed) + " (the size every sample has)"));
        return PassResult.changed(model.withProto(m.build()), rejections);
    }

    /** A dimension the samples disagree on: where it is ({@code input[axis]}, one per input sharing its name), its range. */
    private static final class Disagreement {
        final String param;
        final List<String> where = new ArrayList<>();
        long lo = Long.MAX_VALUE;
        long hi = Long.MIN_VALUE;

        Disagreement(String param) {
            this.param = param;
        }

        void add(String at, long[] values) {
            where.add(at);
            lo = Math.min(lo, values[0]);
            hi = Math.max(hi, values[1]);
        }
    }

    private static final String HINT = ": pad the calibration samples to one length, or fix the dimension first "
            + "(python -m onnxruntime.tools.make_dynamic_shape_fixed)";

    /** The smallest and largest value of dimension {@code d} over {@code shapes}; null when none or a rank differs. */
    private static long[] valuesAt(List<long[]> shapes, int d, int rank) {
        if (shapes.isEmpty()) {
            return null;
        }
        long lo = Long.MAX_VALUE;
        long hi = Long.MIN_VALUE;
        for (long[] s : shapes) {
            if (s.length != rank) {
                return null;
            }
            lo = Math.min(lo, s[d]);
            hi = Math.max(hi, s[d]);
        }
        return new long[] {lo, hi};
    }

    /** The one shape every sample has, or null. */
    private static long[] agreedShape(List<long[]> shapes) {
        if (shapes.isEmpty()) {
            return null;
        }
        for (long[] s : shapes) {
            if (!Arrays.equals(s, shapes.get(0))) {
                return null;
            }
        }
        return shapes.get(0);
    }

    private static ValueInfoProto withShape(ValueInfoProto v, TensorShapeProto shape) {
        TypeProto.Builder t = v.getType().toBuilder();
        t.getTensorTypeBuilder().setShape(shape);
        return v.toBuilder().setType(t).build();
    }

    private static String text(long[] shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i == 0 ? "" : ",").append(shape[i]);
        }
        return sb.append(']').toString();
    }

    private static String shapeText(TensorShapeProto.Builder s) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < s.getDimCount(); i++) {
            TensorShapeProto.Dimension d = s.getDim(i);
            sb.append(i == 0 ? "" : ",").append(d.hasDimValue() ? Long.toString(d.getDimValue())
                    : d.getDimParam().isEmpty() ? "?" : d.getDimParam());
        }
        return sb.append(']').toString();
    }
}
