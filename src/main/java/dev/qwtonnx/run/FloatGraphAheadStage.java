package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.FLOAT_GRAPH;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.ort.OrtSessions;
import dev.qwtonnx.pass.AheadTasks;
import java.util.List;

/**
 * ORT's optimized graph of the prepared float model, which only the report reads, made ahead on a
 * thread of its own from here on: ORT writes and the run reads the whole float model back (0.7 s of
 * MiniLM's report), work that otherwise waits until the end of the run while it can use a core the
 * stages leave idle. Not for models of {@link OrtSessions#IN_MEMORY_FROM} or more: those are
 * memory-bound, and a second session over one beside calibration's would raise the run's peak, so
 * the report makes the graph itself at the end, when the other sessions are closed.
 */
final class FloatGraphAheadStage extends BaseStage {
    FloatGraphAheadStage() {
        super("float-graph-ahead", List.of(PREPARED), List.of(FLOAT_GRAPH));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        AheadTasks ahead = new AheadTasks("qwt-onnx-float-graph");
        facts.put(FLOAT_GRAPH, ahead.submit(() -> OrtKernels.optimized(prepared)));
        if (prepared.serializedSize() < OrtSessions.IN_MEMORY_FROM) {
            ahead.start();
        }
    }
}
