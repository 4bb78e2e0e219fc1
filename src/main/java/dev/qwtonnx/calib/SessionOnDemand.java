package dev.qwtonnx.calib;

import dev.qwtonnx.model.Model;
import java.util.Collection;
import java.util.List;
import java.util.function.Supplier;

/**
 * A pass session that can be let go while nothing needs it, and is made again the same way (the same model, the
 * same outputs exposed, so its runs give the same values) if something does: the calibration pass's float session,
 * which compensation runs again only for float activations the pass did not keep. Closing a session hands its
 * weights and the peak of its arena back before the next sessions are made.
 */
public final class SessionOnDemand implements Supplier<OrtRunner>, AutoCloseable {
    private final Model model;
    private final List<String> exposed;
    private final boolean oneRunAtATime;
    private OrtRunner runner;
    private int made;

    /**
     * {@code runner}, made by {@link OrtRunner#forPasses(Model, Collection)} of {@code model} and {@code exposed}, and
     * made again so; one run at a time, it and each made again, where {@code oneRunAtATime}.
     */
    public SessionOnDemand(OrtRunner runner, Model model, Collection<String> exposed, boolean oneRunAtATime) {
        this.runner = oneRunAtATime ? runner.oneRunAtATime() : runner;
        this.model = model;
        this.exposed = List.copyOf(exposed);
        this.oneRunAtATime = oneRunAtATime;
        this.made = 1;
    }

    /** The session, made again if it was released. Safe to call from several threads. */
    @Override
    public synchronized OrtRunner get() {
        if (runner == null) {
            runner = OrtRunner.forPasses(model, exposed);
            if (oneRunAtATime) {
                runner.oneRunAtATime();
            }
            made++;
        }
        return runner;
    }

    /** Closes the session; the next {@link #get} makes it again. */
    public synchronized void release() {
        OrtRunner r = runner;
        runner = null;
        if (r != null) {
            r.close();
        }
    }

    /** How many times the session has been made, the first included. */
    public synchronized int made() {
        return made;
    }

    @Override
    public void close() {
        release();
    }
}
