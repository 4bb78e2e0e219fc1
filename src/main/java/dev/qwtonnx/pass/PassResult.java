package dev.qwtonnx.pass;

import dev.qwtonnx.model.Model;
import java.util.List;

/**
 * What a pass returns: the model, whether it differs from the one the pass was given, and why the
 * pass left each candidate it looked at and did not rewrite.
 */
public record PassResult(Model model, boolean changed, List<Rejection> rejections) {
    public PassResult {
        rejections = List.copyOf(rejections);
    }

    public PassResult(Model model, boolean changed) {
        this(model, changed, List.of());
    }

    public static PassResult unchanged(Model model) {
        return new PassResult(model, false);
    }

    public static PassResult changed(Model model) {
        return new PassResult(model, true);
    }

    /** The model as given, with the reasons it was left so. */
    public static PassResult unchanged(Model model, List<Rejection> rejections) {
        return new PassResult(model, false, rejections);
    }

    /** A rewritten model, with the reasons for the candidates the pass left as they were. */
    public static PassResult changed(Model model, List<Rejection> rejections) {
        return new PassResult(model, true, rejections);
    }
}
