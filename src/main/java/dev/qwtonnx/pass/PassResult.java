package dev.qwtonnx.pass;

import dev.qwtonnx.model.Model;

/** What a pass returns: the model, and whether it differs from the one the pass was given. */
public record PassResult(Model model, boolean changed) {
    public static PassResult unchanged(Model model) {
        return new PassResult(model, false);
    }

    public static PassResult changed(Model model) {
        return new PassResult(model, true);
    }
}
