package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.prepare.SortNodes;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

/** Loading a model a command was given: checked for ONNX Runtime before any session sees it, errors naming the file. */
final class ModelFiles {
    private ModelFiles() {
    }

    static Model load(Path path) {
        return load(path, UnaryOperator.identity());
    }

    /**
     * @param repair what the command mends before the check (quantize renames duplicate node names), after
     *     the nodes are put in topological order as ORT does when it loads a model
     */
    static Model load(Path path, UnaryOperator<Model> repair) {
        try {
            Model model = repair.apply(SortNodes.apply(ModelIO.load(path)));
            ModelChecker.checkForRuntime(model);
            return model;
        } catch (QwtException e) {
            // Name the model file in front of what is wrong inside it (unless the message names it already).
            throw e.getMessage().contains(path.toString()) ? e : new QwtException(path + ": " + e.getMessage(), e);
        }
    }
}
