package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;

// TEMPORARY placeholder so the lead can compile; the prepare engineer replaces this file.
public final class OpsetUpgrade implements Pass {
    public OpsetUpgrade(long target) {
    }

    @Override
    public String name() {
        return "OpsetUpgrade";
    }

    @Override
    public PassResult run(Model model) {
        return PassResult.unchanged(model);
    }
}
