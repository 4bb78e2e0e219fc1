package dev.qwtonnx.quant;

import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which planned layers run slower in int8 than in float on ORT's CPU provider at one thread, from a
 * cost model that is fixed in code: the cost of each layer in float and in its fused integer form
 * (from its kind and shapes), plus the QuantizeLinear/DequantizeLinear transitions where an int8 tensor
 * meets a float operator. The constants are microseconds on the machine that calibrated them (one
 * x86-64 core with VNNI, ORT 1.30; tools/bench-layer-cost.py, docs/decisions/0016-cost-model.md); only
 * their ratios matter, so the decision is the same on every machine for the same model and shapes.
 *
 * <p>The decision is over the whole plan, not layer by layer in isolation: a layer's int8 form is
 * charged the Q it needs where its input comes from float and the DQ where its output feeds float,
 * and credited the ones it removes between two int8 neighbours. Layers leave int8 one at a time, the
 * one whose float form saves most first, re-judging its neighbours after each; then each chain of int8
 * layers joined directly by int8 tensors is judged as a block, all int8 against all float.
 */
public final class CostModel {
    // Float Conv (MLAS NCHW): a fixed cost per call plus a cost per multiply-accumulate.
    static final double FLOAT_CALL_US = 0.5;
    static final double FLOAT_DEPTHWISE_CALL_US = 1.0;
    static final double FLOAT_CONV_US_PER_MAC = 0.0095e-3;
    static final double FLOAT_DEPTHWISE_US_PER_MAC = 0.0125e-3;
    // Float MatMul/Gemm.
    static final double FLOAT_MATMUL_CALL_US = 0.3;
    static final double FLOAT_MATMUL_US_PER_MAC = 0.010e-3;
    // Integer forms (QLinearConv in NHWC, QGemm/MatMulInteger): per call, per output pixel, per MAC.
    static final double INT8_CALL_US = 1.0;
    static final double INT8_DEPTHWISE_CALL_US = 1.5;
    static final double INT8_POINTWISE_US_PER_PIXEL = 1.5e-3;
    static final double INT8_DEPTHWISE_US_PER_PIXEL = 7.0e-3;
    static final double INT8_CONV_US_PER_MAC = 0.0025e-3;
    static final double INT8_DEPTHWISE_US_PER_MAC = 0.0167e-3;
    /** A regular (k×k) integer Conv also gathers its input patches: per output pixel and patch element. */
    static final double INT8_IM2COL_US = 0.035e-3;
    static final double INT8_MATMUL_CALL_US = 0.8;
    static final double INT8_MATMUL_US_PER_MAC = 0.003e-3;
    /**
     * One QuantizeLinear or DequantizeLinear on n elements: half a measured Q+DQ pair. ORT's transpose
     * optimizer moves the NHWC layout transposes of its integer Convs through the elementwise float
     * operators between layers, so inside a model a transition costs about the Q or DQ alone, less than
     * the boundary of a one-layer benchmark model (which also pays the transposes).
     */
    static final double TRANSITION_CALL_US = 1.0;
    static final double TRANSITION_US_PER_ELEMENT = 0.11e-3;

    private CostModel() {
    }

    /** How every reason this model gives begins. */
    private static final String SLOWER = "int8 slower than float";

    /** A layer's estimated cost in float and in int8 (without transitions), in calibration microseconds. */
    public record LayerCost(String layer, String shape, double floatUs, double int8Us) {
    }

    /** A layer the model keeps in float: its cost in float and int8 with the transitions it changes. */
    public record Slower(String layer, double floatUs, double int8Us, boolean asBlock) {
        public String reason() {
            return String.format(SLOWER + "%s: est. %.1f vs %.1f us", asBlock ? " (as a block)" : "",
                    int8Us, floatUs);
        }
    }

    /**
     * The layers of {@code layers} to keep in float, in plan order. {@code shapes} holds the observed
     * shape of each layer's input and (where it has an output Q) output range tensor; a layer whose
     * shapes are not there is assumed to pay in int8 and stays quantized.
     */
    public static List<Slower> slowerInInt8(GraphProto graph, List<LayerPlan> layers, Map<String, long[]> shapes) {
        Map<String, TensorProto> inits = new HashMap<>();
        for (TensorProto t : graph.getInitializerList()) {
            inits.put(t.getName(), t);
        }
        Map<String, List<NodeProto>> consumers = new HashMap<>();
        for (NodeProto n : graph.getNodeList()) {
            for (String in : n.getInputList()) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
        }
        Set<String> graphOutputs = new java.util.HashSet<>();
        graph.getOutputList().forEach(o -> graphOutputs.add(o.getName()));

        List<Judged> judged = new ArrayList<>();
        for (LayerPlan l : layers) {
            LayerCost c = cost(l, inits.get(l.weight()), shapes);
            if (c != null) {
                judged.add(new Judged(l, c));
            }
        }
        State s = new State(judged, consumers, graphOutputs, shapes);
        Map<String, Slower> out = new LinkedHashMap<>();
        boolean changed = true;
        while (changed) {
            changed = false;
            // One layer at a time, the largest loss first (ties: plan order).
            while (true) {
                Judged worst = null;
                double worstGain = 0;
                for (Judged j : judged) {
                    if (!j.int8) {
                        continue;
                    }
                    double gain = s.int8Total(List.of(j)) - s.floatTotal(List.of(j));
                    if (gain > worstGain + 1e-9) {
                        worst = j;
                        worstGain = gain;
                    }
                }
                if (worst == null) {
                    break;
                }
                double i = s.int8Total(List.of(worst));
                double f = s.floatTotal(List.of(worst));
                worst.int8 = false;
                out.put(worst.layer.name(), new Slower(worst.layer.name(), f, i, false));
                changed = true;
            }
            // Then chains of int8 layers joined by int8 tensors, each as a block.
            for (List<Judged> block : s.blocks()) {
                if (block.size() < 2) {
                    continue;
                }
                double i = s.int8Total(block);
                double f = s.floatTotal(block);
                if (i > f + 1e-9) {
                    for (Judged j : block) {
                        j.int8 = false;
                        out.put(j.layer.name(), new Slower(j.layer.name(), f, i, true));
                    }
                    changed = true;
                }
            }
        }
        List<Slower> ordered = new ArrayList<>();
        for (LayerPlan l : layers) {
            if (out.containsKey(l.name())) {
                ordered.add(out.get(l.name()));
            }
        }
        return ordered;
    }

    /** The float and int8 cost of one layer from its kind and shapes; null where the shapes are unknown. */
    public static LayerCost cost(LayerPlan l, TensorProto weight, Map<String, long[]> shapes) {
        long[] in = shapes.get(l.input());
        if (in == null || weight == null) {
            return null;
        }
        long[] w = Tensors.dims(weight);
        if (l.kind() == LayerKind.CONV) {
            long[] out = shapes.get(l.outputRangeTensor());
            if (out == null || w.length < 3 || out.length != w.length) {
                return null;
            }
            long group = Nodes.intAttr(l.node(), "group", 1);
            long cout = w[0];
            long cinPerGroup = w[1];
            long taps = 1;
            for (int i = 2; i < w.length; i++) {
                taps *= w[i];
            }
            long pixels = out[0];
            for (int i = 2; i < out.length; i++) {
                pixels *= out[i];
            }
            double macs = (double) pixels * cout * cinPerGroup * taps;
            String shape = String.format("%dx%d k%d g%d on %d px", cout, cinPerGroup * group, taps, group, pixels);
            if (group > 1 && cinPerGroup == 1) {
                return new LayerCost(l.name(), "depthwise " + shape,
                        FLOAT_DEPTHWISE_CALL_US + macs * FLOAT_DEPTHWISE_US_PER_MAC,
                        INT8_DEPTHWISE_CALL_US + pixels * INT8_DEPTHWISE_US_PER_PIXEL + macs * INT8_DEPTHWISE_US_PER_MAC);
            }
            double int8 = INT8_CALL_US + pixels * INT8_POINTWISE_US_PER_PIXEL + macs * INT8_CONV_US_PER_MAC;
            if (taps > 1) {
                int8 += (double) pixels * cinPerGroup * taps * INT8_IM2COL_US;
            }
            return new LayerCost(l.name(), (taps == 1 ? "pointwise " : "regular ") + shape,
                    FLOAT_CALL_US + macs * FLOAT_CONV_US_PER_MAC, int8);
        }
        // MatMul / Gemm: rows × K × N, K and N from the 2-D weight.
        if (w.length != 2) {
            return null;
        }
        int axis = l.weightAxis();
        long n = w[axis];
        long k = w[1 - axis];
        double elements = 1;
        for (long d : in) {
            elements *= d;
        }
        double macs = elements / k * k * n;
        return new LayerCost(l.name(), String.format("%s K%d N%d rows %.0f", l.kind().opType, k, n, elements / k),
                FLOAT_MATMUL_CALL_US + macs * FLOAT_MATMUL_US_PER_MAC, INT8_MATMUL_CALL_US + macs * INT8_MATMUL_US_PER_MAC);
    }

    static double transition(long[] shape) {
        double n = 1;
        for (long d : shape) {
            n *= d;
        }
        return TRANSITION_CALL_US + n * TRANSITION_US_PER_ELEMENT;
    }

    private static final class Judged {
        final LayerPlan layer;
        final LayerCost cost;
        boolean int8 = true;

        Judged(LayerPlan layer, LayerCost cost) {
            this.layer = layer;
            this.cost = cost;
        }
    }

    /** The plan's current int8/float split and the cost of the tensors around a set of layers. */
    private static final class State {
        final List<Judged> judged;
        final Map<String, List<NodeProto>> consumers;
        final Set<String> graphOutputs;
        final Map<String, long[]> shapes;
        /** Layers by the name of the tensor they read, and by the int8 tensor they write. */
        final Map<String, List<Judged>> byInput = new HashMap<>();
        final Map<String, Judged> byOutput = new HashMap<>();

        State(List<Judged> judged, Map<String, List<NodeProto>> consumers, Set<String> graphOutputs,
                Map<String, long[]> shapes) {
            this.judged = judged;
            this.consumers = consumers;
            this.graphOutputs = graphOutputs;
            this.shapes = shapes;
            for (Judged j : judged) {
                byInput.computeIfAbsent(j.layer.input(), k -> new ArrayList<>()).add(j);
                if (j.layer.quantizeOutput()) {
                    byOutput.put(j.layer.outputRangeTensor(), j);
                }
            }
        }

        double int8Total(List<Judged> set) {
            return total(set, true);
        }

        double floatTotal(List<Judged> set) {
            return total(set, false);
        }

        /** The cost of {@code set} with its layers all int8 (or all float), and of the tensors around it. */
        private double total(List<Judged> set, boolean int8) {
            boolean[] was = new boolean[set.size()];
            for (int i = 0; i < set.size(); i++) {
                was[i] = set.get(i).int8;
                set.get(i).int8 = int8;
            }
            double c = 0;
            Set<String> tensors = new LinkedHashSet<>();
            for (Judged j : set) {
                c += int8 ? j.cost.int8Us() : j.cost.floatUs();
                tensors.add(j.layer.input());
                if (j.layer.quantizeOutput()) {
                    tensors.add(j.layer.outputRangeTensor());
                }
            }
            for (String t : tensors) {
                c += transitions(t);
            }
            for (int i = 0; i < set.size(); i++) {
                set.get(i).int8 = was[i];
            }
            return c;
        }

        /** A Q where a float tensor feeds an int8 layer, a DQ where an int8 tensor feeds a float consumer. */
        private double transitions(String tensor) {
            long[] shape = shapes.get(tensor);
            if (shape == null) {
                return 0;
            }
            Judged producer = byOutput.get(tensor);
            boolean int8Source = producer != null && producer.int8;
            boolean int8Reader = false;
            boolean floatReader = graphOutputs.contains(tensor);
            for (NodeProto n : consumers.getOrDefault(tensor, List.of())) {
                Judged reader = readerLayer(n, tensor);
                if (reader != null && reader.int8) {
                    int8Reader = true;
                } else {
                    floatReader = true;
                }
            }
            if (int8Source) {
                return floatReader ? transition(shape) : 0;
            }
            return int8Reader ? transition(shape) : 0;
        }

        private Judged readerLayer(NodeProto n, String tensor) {
            for (Judged j : byInput.getOrDefault(tensor, List.of())) {
                if (j.layer.node() == n || j.layer.node().equals(n)) {
                    return j;
                }
            }
            return null;
        }

        /** The int8 layers grouped into chains joined directly by int8 tensors, in plan order. */
        List<List<Judged>> blocks() {
            Map<Judged, Judged> parent = new HashMap<>();
            for (Judged j : judged) {
                parent.put(j, j);
            }
            for (Judged j : judged) {
                if (!j.int8) {
                    continue;
                }
                Judged p = byOutput.get(j.layer.input());
                if (p != null && p.int8) {
                    parent.put(find(parent, j), find(parent, p));
                }
            }
            Map<Judged, List<Judged>> groups = new LinkedHashMap<>();
            for (Judged j : judged) {
                if (j.int8) {
                    groups.computeIfAbsent(find(parent, j), k -> new ArrayList<>()).add(j);
                }
            }
            return new ArrayList<>(groups.values());
        }

        private static Judged find(Map<Judged, Judged> parent, Judged j) {
            while (parent.get(j) != j) {
                j = parent.get(j);
            }
            return j;
        }
    }
}
