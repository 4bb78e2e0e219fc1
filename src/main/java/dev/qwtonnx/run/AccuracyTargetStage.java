package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.ACCURACY;
import static dev.qwtonnx.run.QuantizeRun.AFFORDABLE;
import static dev.qwtonnx.run.QuantizeRun.PREPARED;
import static dev.qwtonnx.run.QuantizeRun.RANGES;
import static dev.qwtonnx.run.QuantizeRun.ROUNDED;

import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.LayerPlan;
import dev.qwtonnx.quant.QdqQuantizer;
import dev.qwtonnx.quant.Sensitivity;
import dev.qwtonnx.verify.TargetFidelity;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code --min-sqnr}, {@code --min-cosine}, {@code --metric}: returns layers to float until the
 * target holds on the held-out samples (the calibration samples when none are held out), as few as
 * it can. Greedy with joint re-measurement: at each step the next {@link #CANDIDATES} layers by a
 * cheap score (each layer's output error when quantized alone, {@link Sensitivity}) are each
 * returned to float together with the layers already chosen, the whole quantized model is measured
 * on the samples, and the best set is kept; when none of them improves the worst bound, the next
 * few by the cheap score are tried. Layers whose errors interact (cancel, or only matter once
 * another is float) are judged by what they do together, not by their error alone. The search
 * measures the model before compensation; the written model is measured again after.
 */
final class AccuracyTargetStage extends QuantizeStage {
    /** Candidates measured jointly per try: a few, since each costs one quantized model and a pass over the samples. */
    static final int CANDIDATES = 3;

    AccuracyTargetStage(QuantizeRun.Options options) {
        super("accuracy-target", options, List.of(PREPARED, AFFORDABLE, RANGES, ROUNDED), List.of(ACCURACY));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        // The layers the written model quantizes: those the cost model keeps float are float in every model measured.
        LayerMatcher.Result matched = facts.get(AFFORDABLE);
        AccuracyOptions acc = options.accuracy();
        if (!acc.hasTarget() || matched.layers().isEmpty()) {
            facts.put(ACCURACY, AccuracySearch.NONE);
            return;
        }
        Model prepared = facts.get(PREPARED);
        List<TargetFidelity.Bound> bounds = acc.bounds(TargetFidelity.floatOutputs(prepared));
        TargetFidelity measure = new TargetFidelity(prepared, ctx.measured());
        String samples = measure.samples() + (ctx.heldOut() != null ? " held-out samples" : " calibration samples (none held out)");
        Search s = new Search(prepared, matched.layers(), facts, bounds, measure, ctx);

        Set<String> chosen = new LinkedHashSet<>();
        TargetFidelity.Figures current = s.measure(chosen);
        List<AccuracySearch.Returned> returned = new ArrayList<>();
        int limit = acc.maxFloat(matched.layers().size());
        List<String> order = current.met() ? List.of() : s.cheapOrder();
        while (!current.met() && chosen.size() < limit) {
            Set<String> tried = new TreeSet<>();
            String best = null;
            TargetFidelity.Figures bestFigures = null;
            while (bestFigures == null || bestFigures.margin() <= current.margin()) {
                List<String> batch = order.stream().filter(l -> !chosen.contains(l) && !tried.contains(l))
                        .limit(CANDIDATES).toList();
                if (batch.isEmpty()) {
                    break;
                }
                for (String l : batch) {
                    tried.add(l);
                    Set<String> with = new LinkedHashSet<>(chosen);
                    with.add(l);
                    TargetFidelity.Figures f = s.measure(with);
                    if (bestFigures == null || f.margin() > bestFigures.margin()) {
                        best = l;
                        bestFigures = f;
                    }
                }
            }
            if (bestFigures == null || bestFigures.margin() <= current.margin()) {
                ctx.log().accept("accuracy target: no further layer returned to float improves " + current.describeWorst());
                break;
            }
            AccuracySearch.Returned r = new AccuracySearch.Returned(best, current.describeWorst(), bestFigures.describeWorst());
            ctx.log().accept("accuracy target: " + best + " " + r.why());
            ctx.reject(name(), best, r.why() + " on " + samples);
            returned.add(r);
            chosen.add(best);
            current = bestFigures;
        }
        facts.put(ACCURACY, new AccuracySearch(bounds.stream().map(Object::toString).toList(), returned, current.met(),
                current.describeWorst(), samples, s.measured(), limit));
    }

    /** The quantized models of one search, each measured once. */
    private final class Search {
        private final Model prepared;
        private final List<LayerPlan> layers;
        private final Facts facts;
        private final List<TargetFidelity.Bound> bounds;
        private final TargetFidelity measure;
        private final RunContext ctx;
        private final Map<Set<String>, TargetFidelity.Figures> seen = new HashMap<>();

        Search(Model prepared, List<LayerPlan> layers, Facts facts, List<TargetFidelity.Bound> bounds,
                TargetFidelity measure, RunContext ctx) {
            this.prepared = prepared;
            this.layers = layers;
            this.facts = facts;
            this.bounds = bounds;
            this.measure = measure;
            this.ctx = ctx;
        }

        /** The target's figures with the layers in {@code floatLayers} float and every other matched layer quantized. */
        TargetFidelity.Figures measure(Set<String> floatLayers) {
            Set<String> key = new TreeSet<>(floatLayers);
            TargetFidelity.Figures f = seen.get(key);
            if (f != null) {
                return f;
            }
            List<LayerPlan> quantized = layers.stream().filter(l -> !key.contains(l.name())).toList();
            Model m = quantized.isEmpty() ? prepared : new QdqQuantizer(options.quant(), quantized, facts.get(RANGES),
                    facts.get(ROUNDED)).run(prepared).model();
            f = measure.measure(m, bounds);
            ctx.log().accept("accuracy target: float " + key + ": " + f.describeWorst());
            seen.put(key, f);
            return f;
        }

        int measured() {
            return seen.size();
        }

        /** Layer names by decreasing output error when quantized alone, on a few calibration samples. */
        List<String> cheapOrder() {
            List<Sample> few = new ArrayList<>();
            for (Sample x : ctx.calibration()) {
                if (few.size() == FloatBudgetStage.SENSITIVITY_SAMPLES) {
                    break;
                }
                few.add(x);
            }
            return Sensitivity.rank(prepared, layers, facts.get(RANGES), facts.get(ROUNDED), options.quant(), few,
                    ctx.progress()).stream().map(Sensitivity.LayerError::layer).toList();
        }
    }
}
