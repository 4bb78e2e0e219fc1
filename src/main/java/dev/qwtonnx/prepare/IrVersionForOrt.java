package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;

/**
 * Declares a model newer than ONNX Runtime reads at the newest IR version it reads. ORT refuses a
 * model by its declared IR version alone, before it looks at what the model uses, and Python's
 * onnx 1.23 declares IR 14 in every model its helpers make, opset 17 ones included. IR 14 adds
 * two element types (6-bit floats), which the model checker refuses as unknown, and opaque types
 * outside ONNX-ML, which no operator of the default domain reads; IR 13 added 2-bit integers, which
 * the checker knows and ORT 1.29 reads. So a model the checker passes means the same at IR 13, and
 * the model written is one ORT runs.
 */
public final class IrVersionForOrt implements Pass {
    /** The newest IR version ONNX Runtime 1.29 reads. */
    public static final long ORT_MAX_IR_VERSION = 13;

    @Override
    public String name() {
        return "ir-version";
    }

    @Override
    public PassResult run(Model model) {
        if (model.proto().getIrVersion() <= ORT_MAX_IR_VERSION) {
            return PassResult.unchanged(model);
        }
        return PassResult.changed(model.withProto(model.proto().toBuilder().setIrVersion(ORT_MAX_IR_VERSION).build()));
    }

    /** {@code model} at an IR version ORT reads. */
    public static Model apply(Model model) {
        return new IrVersionForOrt().run(model).model();
    }

    /** What a summary says of a model declaring {@code irVersion}: empty where ORT reads it as it is. */
    public static String note(long irVersion) {
        return irVersion <= ORT_MAX_IR_VERSION ? ""
                : "the model declares IR version " + irVersion + ", newer than ONNX Runtime reads ("
                        + ORT_MAX_IR_VERSION + "); it uses nothing that IR " + ORT_MAX_IR_VERSION
                        + " lacks, so it is read, and written, as IR " + ORT_MAX_IR_VERSION;
    }
}
