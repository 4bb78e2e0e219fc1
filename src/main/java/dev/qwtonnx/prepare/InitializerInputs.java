package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.HashSet;
import java.util.Set;

/**
 * Treats a graph input that has an initializer of the same name as that constant, and drops it
 * from the inputs. Before IR version 4 every initializer had to be listed as an input too (old
 * exports still do), and ONNX Runtime reads those as constants; from IR 4 on such an input is an
 * overridable default, which keeps ORT from folding or fusing the layers that read it. Either way
 * a quantizer needs the weight constant, so the model becomes IR 4 or later with the initializers
 * as they were and only real inputs left.
 */
public final class InitializerInputs implements Pass {
    static final long MIN_IR_VERSION = 4;

    @Override
    public String name() {
        return "initializer-inputs";
    }

    @Override
    public PassResult run(Model model) {
        GraphProto g = model.graph();
        Set<String> constants = new HashSet<>();
        for (TensorProto t : g.getInitializerList()) {
            constants.add(t.getName());
        }
        GraphProto.Builder b = g.toBuilder().clearInput();
        boolean changed = false;
        for (ValueInfoProto v : g.getInputList()) {
            if (constants.contains(v.getName())) {
                changed = true;
            } else {
                b.addInput(v);
            }
        }
        if (!changed) {
            return PassResult.unchanged(model);
        }
        ModelProto.Builder m = model.proto().toBuilder().setGraph(b);
        if (m.getIrVersion() < MIN_IR_VERSION) {
            m.setIrVersion(MIN_IR_VERSION);
        }
        return PassResult.changed(model.withProto(m.build()));
    }
}
