package dev.qwtonnx.pass;

import dev.qwtonnx.model.Model;

/**
 * One transformation of a model. A pass holds no state between runs: configuration comes in
 * through its constructor, and everything a run needs lives in locals. Models are immutable, so
 * every pass is functional: it returns a new model (or the same instance when nothing changed).
 */
public interface Pass {
    /** A short name for logs, errors and node provenance. */
    String name();

    PassResult run(Model model);
}
