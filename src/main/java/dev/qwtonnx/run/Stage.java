package dev.qwtonnx.run;

import java.util.List;

/**
 * One step of a run: a transformation of the model (a pass) or an analysis that produces typed
 * facts. A stage reads only the facts it declares in {@link #consumes()} and writes exactly those
 * in {@link #produces()}; stages depend on each other through those facts, never by calling each
 * other. A stage holds no state between runs: its configuration comes in through its constructor.
 */
public interface Stage {
    /** A short name for logs, timings and errors. */
    String name();

    List<Fact<?>> consumes();

    List<Fact<?>> produces();

    void run(RunContext ctx, Facts facts);
}
