package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.FLOAT_GRAPH;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.ort.OrtSessions;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * ORT's optimized graph of the prepared float model, which only the report reads, made on a thread
 * of its own from here on: ORT writes and the run reads the whole float model back (0.7 s of
 * MiniLM's report), work that otherwise waits until the end of the run while it can use a core the
 * stages leave idle (not for models of {@link OrtSessions#IN_MEMORY_FROM} or more). The report waits
 * for it, or makes it itself where it was not made or failed.
 */
final class FloatGraphAheadStage extends BaseStage {
    FloatGraphAheadStage() {
        super("float-graph-ahead", List.of(PREPARED), List.of(FLOAT_GRAPH));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model prepared = facts.get(PREPARED);
        CompletableFuture<Model> graph = new CompletableFuture<>();
        if (prepared.serializedSize() >= OrtSessions.IN_MEMORY_FROM) {
            // A model this big is memory-bound: a second session over it beside calibration's would raise the
            // run's peak, so the report makes the graph at its end, when the other sessions are closed.
            graph.complete(null);
            facts.put(FLOAT_GRAPH, graph);
            return;
        }
        Thread t = new Thread(() -> {
            try {
                graph.complete(OrtKernels.optimized(prepared));
            } catch (Throwable e) {
                graph.completeExceptionally(e);
            }
        }, "qwt-onnx-float-graph");
        t.setDaemon(true);
        t.start();
        facts.put(FLOAT_GRAPH, graph);
    }
}
