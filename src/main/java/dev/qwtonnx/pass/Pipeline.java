package dev.qwtonnx.pass;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * An ordered list of passes. With {@code verifyBetween}, the structural checker runs after every
 * pass, so a pass that breaks an invariant is named at once (tests turn this on).
 */
public final class Pipeline {
    private final List<Pass> passes;
    private final boolean verifyBetween;

    public Pipeline(List<Pass> passes, boolean verifyBetween) {
        this.passes = List.copyOf(passes);
        this.verifyBetween = verifyBetween;
    }

    public List<Pass> passes() {
        return passes;
    }

    /** The model the passes made and every rejection they returned, in the order the passes ran. */
    public record Result(Model model, List<Rejection> rejections) {
        public Result {
            rejections = List.copyOf(rejections);
        }
    }

    /** Runs the passes and returns the model they made; the rejections go to {@code log} only. */
    public Model run(Model model, Consumer<String> log) {
        return apply(model, log).model();
    }

    /**
     * Runs the passes; {@code log} (may be null) gets a line per pass and then one per rejection of
     * that pass, as {@code PASS: left SUBJECT: REASON}.
     */
    public Result apply(Model model, Consumer<String> log) {
        List<String> ran = new ArrayList<>();
        List<Rejection> rejections = new ArrayList<>();
        Model current = model;
        for (Pass p : passes) {
            PassResult r;
            try {
                r = p.run(current);
                if (verifyBetween && r.changed()) {
                    ModelChecker.check(r.model());
                }
            } catch (QwtException e) {
                throw new QwtException(p.name() + ": " + e.getMessage(), e);
            } catch (RuntimeException e) {
                throw new IllegalStateException("pass " + p.name() + " failed after " + ran + ": " + e, e);
            }
            if (!r.changed() && r.model() != current) {
                throw new IllegalStateException("pass " + p.name() + " returned a new model but said nothing changed");
            }
            if (log != null) {
                log.accept(p.name() + (r.changed() ? ": changed" : ": no change"));
                r.rejections().forEach(x -> log.accept(x.toString()));
            }
            rejections.addAll(r.rejections());
            ran.add(p.name());
            current = r.model();
        }
        return new Result(current, rejections);
    }
}
