package dev.qwtonnx.cwac;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.quant.LayerKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compensation's measurement of layers whose quantized output and float target are outputs of two
 * models run on the same samples: the form of layers inside Loop and Scan bodies, whose outputs the
 * models hand out stacked over the iterations. The sums per channel are kept in two halves by
 * sample, as the in-graph measurement keeps them, so that {@link Compensator#fitAndFold} fits both
 * kinds the same way ({@code --gate cv} included).
 */
public final class PairedOutputs {
    private PairedOutputs() {
    }

    /**
     * One layer: the quantized model's output holding its output, the float model's output holding
     * its target, and how many leading axes the stacking added (a Conv's channels follow them).
     */
    public record Pair(QdqLayer layer, String quantOutput, String floatOutput, int stackedAxes) {
        int channelAxis(int rank) {
            return layer.kind() == LayerKind.CONV ? 1 + stackedAxes : rank - 1;
        }
    }

    /**
     * The sums per layer (layers whose two outputs differed in shape on some sample, such as a loop
     * whose trip count follows the values, are in {@code mismatched} and have no sums).
     */
    public record Measured(Map<String, ChannelStats[]> stats, Set<String> mismatched) {
    }

    /** Runs both models on the first {@code limit} samples (0: all) and sums each pair's rows per channel. */
    public static Measured measure(Model floatModel, Model quantModel, List<Pair> pairs, CalibrationSource samples,
            int limit) {
        List<String> floatOuts = new ArrayList<>(new LinkedHashSet<>(pairs.stream().map(Pair::floatOutput).toList()));
        List<String> quantOuts = new ArrayList<>(new LinkedHashSet<>(pairs.stream().map(Pair::quantOutput).toList()));
        Map<String, ChannelStats[]> stats = new LinkedHashMap<>();
        Set<String> mismatched = new LinkedHashSet<>();
        try (OrtRunner fr = OrtRunner.forPasses(floatModel, List.of());
                OrtRunner qr = OrtRunner.of(quantModel, List.of(), true, Grid.measures(quantModel))) {
            int seen = 0;
            for (Sample sample : samples) {
                if (limit > 0 && seen == limit) {
                    break;
                }
                Map<String, FloatTensor> fy = fr.run(sample, floatOuts);
                Map<String, FloatTensor> qy = qr.run(sample, quantOuts);
                for (Pair p : pairs) {
                    FloatTensor yf = fy.get(p.floatOutput());
                    FloatTensor yq = qy.get(p.quantOutput());
                    QdqLayer l = p.layer();
                    if (!Arrays.equals(yf.shape(), yq.shape())) {
                        mismatched.add(l.name());
                        continue;
                    }
                    stats.computeIfAbsent(l.name(), k -> new ChannelStats[] {new ChannelStats(l.channels()),
                            new ChannelStats(l.channels())})[seen % 2].add(yq, yf, p.channelAxis(yq.shape().length));
                }
                seen++;
            }
        }
        mismatched.forEach(stats::remove);
        stats.values().removeIf(st -> st[0].isEmpty() && st[1].isEmpty());
        return new Measured(stats, mismatched);
    }
}
