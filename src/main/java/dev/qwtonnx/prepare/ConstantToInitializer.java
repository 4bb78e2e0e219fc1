package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;

// TEMPORARY placeholder so the lead can compile; the prepare engineer replaces this file.
public final class ConstantToInitializer implements Pass {
    @Override
    public String name() {
        return "ConstantToInitializer";
    }

    @Override
    public PassResult run(Model model) {
        return PassResult.unchanged(model);
    }
}
