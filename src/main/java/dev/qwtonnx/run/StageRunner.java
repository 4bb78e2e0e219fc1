package dev.qwtonnx.run;

import dev.qwtonnx.calib.OrtRunner;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Runs a declared list of stages in order. Before any work it checks the list: every fact a stage
 * consumes is given or produced by an earlier stage, and no fact is produced twice. While running
 * it times each stage, checks that each produced what it declared, and closes a fact that holds
 * resources (a session, a thread) right after the last stage that reads it, so sessions live no
 * longer than the stages that need them. On failure it closes what is open and names the stage.
 */
public final class StageRunner {
    /**
     * One stage's wall time, and the ORT sessions it created and runs it made (those of other
     * threads meanwhile included); it prints as --verbose logs it.
     */
    public record Timing(String stage, Duration wall, long sessions, long runs) {
        public Timing(String stage, Duration wall) {
            this(stage, wall, 0, 0);
        }

        @Override
        public String toString() {
            String s = String.format(java.util.Locale.ROOT, "stage %s: %.3f s", stage, wall.toNanos() / 1e9);
            return sessions == 0 && runs == 0 ? s : s + " (" + sessions + " ORT session" + (sessions == 1 ? "" : "s")
                    + ", " + runs + " run" + (runs == 1 ? "" : "s") + ")";
        }
    }

    private StageRunner() {
    }

    /** Runs {@code stages} on {@code facts} (the given ones), adding what they produce; returns the timings. */
    public static List<Timing> run(String run, List<Stage> stages, RunContext ctx, Facts facts) {
        List<Fact<?>> order = new ArrayList<>();
        Map<Fact<?>, Integer> lastUse = check(stages, facts, order);
        ctx.log().accept(run + " stages: " + stages.stream().map(Stage::name).collect(Collectors.joining(" -> ")));
        List<Timing> timings = new ArrayList<>();
        List<String> ran = new ArrayList<>();
        try {
            for (int i = 0; i < stages.size(); i++) {
                Stage s = stages.get(i);
                long t0 = System.nanoTime();
                long[] c0 = OrtRunner.counts();
                try {
                    s.run(ctx, facts);
                } catch (RuntimeException e) {
                    e.addSuppressed(new StageFailure(run, s.name(), ran));
                    throw e;
                }
                Duration wall = Duration.ofNanos(System.nanoTime() - t0);
                for (Fact<?> f : s.produces()) {
                    if (!facts.has(f)) {
                        throw new IllegalStateException("stage " + s.name() + " did not produce '" + f + "'");
                    }
                }
                long[] c1 = OrtRunner.counts();
                Timing timing = new Timing(s.name(), wall, c1[0] - c0[0], c1[1] - c0[1]);
                timings.add(timing);
                ctx.log().accept(timing.toString());
                ran.add(s.name());
                for (int k = order.size() - 1; k >= 0; k--) {
                    if (lastUse.getOrDefault(order.get(k), -1) == i) {
                        release(facts, order.get(k));
                    }
                }
            }
        } catch (RuntimeException | Error e) {
            closeAll(facts, order, e);
            throw e;
        }
        // A resource no stage reads is still this run's to close.
        for (int k = order.size() - 1; k >= 0; k--) {
            release(facts, order.get(k));
        }
        return List.copyOf(timings);
    }

    /**
     * The index of the last stage that reads each fact, with the produced facts in {@code order};
     * fails on a list that cannot run.
     */
    static Map<Fact<?>, Integer> check(List<Stage> stages, Facts given, List<Fact<?>> order) {
        Map<Fact<?>, Integer> lastUse = new HashMap<>();
        Set<Fact<?>> produced = new HashSet<>();
        for (int i = 0; i < stages.size(); i++) {
            Stage s = stages.get(i);
            for (Fact<?> f : s.consumes()) {
                if (!produced.contains(f) && !given.has(f)) {
                    throw new IllegalStateException("stage " + s.name() + " consumes '" + f
                            + "', which is neither given nor produced by a stage before it");
                }
                lastUse.put(f, i);
            }
            for (Fact<?> f : s.produces()) {
                if (!produced.add(f) || given.has(f)) {
                    throw new IllegalStateException("'" + f + "' is produced twice (again by " + s.name() + ")");
                }
                order.add(f);
            }
        }
        return lastUse;
    }

    private static void release(Facts facts, Fact<?> f) {
        if (facts.has(f) && facts.get(f) instanceof AutoCloseable c) {
            facts.remove(f);
            close(c);
        }
    }

    private static void closeAll(Facts facts, List<Fact<?>> order, Throwable cause) {
        for (int k = order.size() - 1; k >= 0; k--) {
            try {
                release(facts, order.get(k));
            } catch (RuntimeException e) {
                cause.addSuppressed(e);
            }
        }
    }

    private static void close(AutoCloseable c) {
        try {
            c.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException("closing " + c + ": " + e, e);
        }
    }

    /** Says, on a failure's trace, which stage of which run failed and which ran before it. */
    static final class StageFailure extends RuntimeException {
        StageFailure(String run, String stage, List<String> ran) {
            super(run + " stage " + stage + " failed, after " + ran, null, false, false);
        }
    }
}
