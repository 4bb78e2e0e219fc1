package dev.qwtonnx.calib;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Percentile calibration reduced inside the session, as {@link InGraphMinMax} is for min/max: two TopKs
 * of each tensor hand over its {@link TailObserver#tail} largest and smallest values, and a Shape how
 * many values it had, instead of the whole activation. The reductions live in the measuring model only.
 */
public final class InGraphTails {
    private InGraphTails() {
    }

    /**
     * {@code base}'s model with, for each of {@code tensors}, [largest, smallest, shape] outputs for
     * {@link TailObserver}s keeping {@code percentile} % of the values; {@code base}'s reductions kept.
     */
    public static InGraphMinMax.Reduced attach(InGraphMinMax.Reduced base, Collection<String> tensors, double percentile) {
        if (tensors.isEmpty()) {
            return base;
        }
        double cut = TailObserver.cut(percentile);
        GraphEditor g = new GraphEditor(base.model().graph());
        String flat = g.names().fresh("calib_tail_flat");
        String cutName = g.names().fresh("calib_tail_cut");
        String two = g.names().fresh("calib_tail_two");
        String one = g.names().fresh("calib_tail_one");
        String kShape = g.names().fresh("calib_tail_k_shape");
        g.putInitializer(Tensors.int64Tensor(flat, new long[] {1}, new long[] {-1}));
        g.putInitializer(TensorProto.newBuilder().setName(cutName).setDataType(TensorProto.DataType.DOUBLE_VALUE)
                .addDoubleData(cut).build());
        g.putInitializer(Tensors.int64Tensor(two, new long[0], new long[] {2}));
        g.putInitializer(Tensors.int64Tensor(one, new long[0], new long[] {1}));
        g.putInitializer(Tensors.int64Tensor(kShape, new long[] {1}, new long[] {1}));
        Map<String, List<String>> outputs = new LinkedHashMap<>(base.outputs());
        for (String t : tensors) {
            // k = min(n, 2·ceil(cut·n) + 1), in doubles as TailObserver.tail computes it
            String n = node(g, "Size", t, List.of(t));
            String nd = node(g, "Cast", t, List.of(n), Nodes.intAttribute("to", TensorProto.DataType.DOUBLE_VALUE));
            String c = node(g, "Ceil", t, List.of(node(g, "Mul", t, List.of(nd, cutName))));
            String ci = node(g, "Cast", t, List.of(c), Nodes.intAttribute("to", TensorProto.DataType.INT64_VALUE));
            String k0 = node(g, "Add", t, List.of(node(g, "Mul", t, List.of(ci, two)), one));
            String k = node(g, "Reshape", t, List.of(node(g, "Min", t, List.of(k0, n)), kShape));
            String values = node(g, "Reshape", t, List.of(t, flat));
            String largest = topK(g, t, values, k, true);
            String smallest = topK(g, t, values, k, false);
            // as floats, the way the pass hands over the tails, so that observe reads all three alike
            String shape = node(g, "Cast", t, List.of(node(g, "Shape", t, List.of(t))),
                    Nodes.intAttribute("to", TensorProto.DataType.FLOAT_VALUE));
            outputs.put(t, List.of(largest, smallest, shape));
        }
        return new InGraphMinMax.Reduced(base.model().withGraph(g.build()), outputs);
    }

    private static String node(GraphEditor g, String op, String tensor, List<String> inputs,
            dev.qwtonnx.onnx.AttributeProto... attrs) {
        String out = g.names().fresh(tensor + "_calib_tail_" + op.toLowerCase(java.util.Locale.ROOT));
        g.append(Nodes.node(op, g.names().fresh(out), inputs, List.of(out), "calibrate", attrs));
        return out;
    }

    private static String topK(GraphEditor g, String tensor, String values, String k, boolean largest) {
        String out = g.names().fresh(tensor + (largest ? "_calib_tail_top" : "_calib_tail_bottom"));
        String idx = g.names().fresh(out + "_idx");
        g.append(Nodes.node("TopK", g.names().fresh(out), List.of(values, k), List.of(out, idx), "calibrate",
                Nodes.intAttribute("largest", largest ? 1 : 0), Nodes.intAttribute("sorted", 0)));
        return out;
    }

    /** Feeds one run's [largest, smallest, shape] of a tensor to its observer. */
    static void observe(TailObserver o, FloatTensor largest, FloatTensor smallest, FloatTensor shape) {
        long n = 1;
        for (float d : shape.data()) {
            n *= (long) d; // exact below 2^24 a dimension; beyond, a few parts in 10^8 off, which moves no cut
        }
        o.observeTails(largest.data(), smallest.data(), n);
    }
}
