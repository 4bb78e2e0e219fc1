package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TensorShapeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** The inputs a model needs fed: its graph inputs that are not initializers, in graph order. */
public final class InputSpecs {
    private InputSpecs() {
    }

    public static List<InputSpec> of(GraphProto g) {
        Set<String> inits = new HashSet<>();
        for (TensorProto t : g.getInitializerList()) {
            inits.add(t.getName());
        }
        List<InputSpec> out = new ArrayList<>();
        for (ValueInfoProto v : g.getInputList()) {
            if (inits.contains(v.getName())) {
                continue;
            }
            if (!v.getType().hasTensorType()) {
                throw new QwtException("model input '" + v.getName() + "' is not a tensor; only tensor inputs can be calibrated");
            }
            int code = v.getType().getTensorType().getElemType();
            if (!DataType.isKnown(code)) {
                TensorProto.DataType named = TensorProto.DataType.forNumber(code);
                throw new QwtException("model input '" + v.getName() + "' holds " + (named == null ? "element type " + code
                        : named.name().toLowerCase(java.util.Locale.ROOT)) + " tensors; calibration samples can only be"
                        + " numeric or boolean");
            }
            long[] shape = null;
            if (v.getType().getTensorType().hasShape()) {
                List<TensorShapeProto.Dimension> dims = v.getType().getTensorType().getShape().getDimList();
                shape = new long[dims.size()];
                for (int i = 0; i < shape.length; i++) {
                    TensorShapeProto.Dimension d = dims.get(i);
                    shape[i] = d.hasDimValue() && d.getDimValue() >= 0 ? d.getDimValue() : -1;
                }
            }
            out.add(new InputSpec(v.getName(), DataType.of(code), shape));
        }
        return out;
    }
}
