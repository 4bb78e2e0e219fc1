package dev.qwtonnx.run;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What the stages of a run decided against and why: a layer left in float, a rewrite whose check
 * failed, a branch never taken. Collected as values so that --verbose, the summary and the report
 * show them, rather than dropped where they are found.
 */
public final class Diagnostics {
    /** One decision against a subject (a node, a tensor, a branch), with the stage that made it. */
    public record Reason(String stage, String subject, String why) {
        @Override
        public String toString() {
            return stage + ": " + subject + ": " + why;
        }
    }

    private final List<Reason> reasons = Collections.synchronizedList(new ArrayList<>());

    public void add(String stage, String subject, String why) {
        reasons.add(new Reason(stage, subject, why));
    }

    public List<Reason> reasons() {
        synchronized (reasons) {
            return List.copyOf(reasons);
        }
    }
}
