package dev.qwtonnx.run;

import java.util.List;

/**
 * What the accuracy target's search did: the layers it returned to float, in the order it chose
 * them, each with the figure before and after; whether the target held on the samples it measured
 * on (the quantized model before compensation); and how many candidate models it measured.
 *
 * @param target  the bounds, as they print ("SQNR of 'y' >= 20.00 dB"); empty: no target was given
 * @param figure  the worst bound's figure at the end of the search
 * @param samples what the search measured on ("12 held-out samples")
 * @param limit   most layers the search could return to float
 */
public record AccuracySearch(List<String> target, List<Returned> returned, boolean met, String figure, String samples,
        int measured, int limit) {
    /** One layer returned to float, and the worst bound's figure before and after. */
    public record Returned(String layer, String before, String after) {
        /** Why the layer stays float, as the summary, the log and the report say it. */
        public String why() {
            return "returned to float by the accuracy target (measured jointly with the layers chosen before it): "
                    + before + " -> " + after;
        }
    }

    static final AccuracySearch NONE = new AccuracySearch(List.of(), List.of(), true, "", "", 0, 0);

    public AccuracySearch {
        target = List.copyOf(target);
        returned = List.copyOf(returned);
    }

    public boolean hasTarget() {
        return !target.isEmpty();
    }
}
