package dev.qwtonnx.cli;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.prepare.IrVersionForOrt;
import dev.qwtonnx.prepare.NameNodes;
import dev.qwtonnx.prepare.SortNodes;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

/**
 * Loading a model a command was given: checked for ONNX Runtime before any session sees it, at an IR version ORT
 * reads ({@link IrVersionForOrt}), errors naming the file.
 */
final class ModelFiles {
    private ModelFiles() {
    }

    /** A model the command writes again: its nodes keep their names (compensate's INT8 model). */
    static Model load(Path path, PrintWriter notes) {
        return load(path, UnaryOperator.identity(), notes);
    }

    /**
     * A model the command reads nodes of by name: nodes without a name, or with one another node has, are named
     * ({@link NameNodes}), as quantize names them before it records where each layer came from. Verify and
     * compensate name the float model the same way, so a layer's recorded float node is the node of that name,
     * and no two nodes share a key in the maps that measure them (with every node of a model unnamed, each layer
     * was measured against the graph's last node).
     */
    static Model loadNamed(Path path, PrintWriter notes) {
        return load(path, NameNodes::apply, notes);
    }

    /**
     * @param repair what the command mends before the check, after the nodes are put in topological order as
     *     ORT does when it loads a model
     * @param notes where a note on what loading changed goes (the command's error stream, with its warnings)
     */
    private static Model load(Path path, UnaryOperator<Model> repair, PrintWriter notes) {
        try {
            Model loaded = ModelIO.load(path);
            Model model = repair.apply(SortNodes.apply(loaded));
            ModelChecker.checkForRuntime(model);
            // Only once the checker has refused any element type an older IR version lacks.
            String note = IrVersionForOrt.note(loaded.proto().getIrVersion());
            if (!note.isEmpty()) {
                notes.println("note: " + path.getFileName() + ": " + note);
            }
            return IrVersionForOrt.apply(model);
        } catch (QwtException e) {
            // Name the model file in front of what is wrong inside it (unless the message names it already).
            throw e.getMessage().contains(path.toString()) ? e : new QwtException(path + ": " + e.getMessage(), e);
        }
    }
}
