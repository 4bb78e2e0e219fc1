package dev.qwtonnx.quant;

import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.NodeProto;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The layers whose outputs reach a {@code Log} through magnitude operations only: an audio front-end's STFT (a
 * Conv per real and imaginary part, then power or magnitude) and its mel filterbank (a MatMul), whose log is the
 * features. A log turns a uniform grid's absolute error into a relative one: the error of {@code log(x)} is the
 * step over {@code x}, so the many small values of a spectrum, which one 8-bit range over its peaks rounds to a
 * step or to zero, come out wrong by nats. The openWakeWord melspectrogram read 5.1-5.9 dB SQNR (cosine 0.86)
 * quantized, Silero VAD v4's STFT Conv took its LSTM state to 5.4 dB (decision 0026).
 *
 * <p>From each {@code Log}, the walk goes up through the operations below, which keep a value's magnitude
 * meaningful (sums, products, powers, roots, clips and reshapes), and through at most {@link #LAYERS} layers on a
 * path: a spectrum's power, then a filterbank over it. It stops at any other operation: a log-softmax written as
 * {@code Log(Softmax(x))} or {@code Log(ReduceSum(Exp(x)))} reaches no layer, and a log after a deep stack of
 * Conv and Relu marks only the last two.
 */
public final class LogInputs {
    /** Layers on one path from a {@code Log} that stay float: the filterbank and the transform under it. */
    static final int LAYERS = 2;

    /** Operations a magnitude passes through on its way to the log. */
    static final Set<String> MAGNITUDE_OPS = Set.of("Add", "Mul", "Div", "Pow", "Sqrt", "Abs", "Clip", "Max", "Relu",
            "ReduceSum", "ReduceMean", "ReduceMax", "ReduceSumSquare", "ReduceL1", "ReduceL2", "Reshape", "Transpose",
            "Squeeze", "Unsqueeze", "Flatten", "Expand", "Slice", "Split", "Concat", "Identity", "Cast");

    private LogInputs() {
    }

    /** Each layer (Conv, MatMul, Gemm) of {@code g} whose output reaches a {@code Log} so, with that {@code Log}'s name. */
    public static Map<String, String> layers(GraphEditor g) {
        Map<String, String> out = new LinkedHashMap<>();
        for (NodeProto log : g.nodes()) {
            if (!log.getOpType().equals("Log") || !Model.isDefaultDomain(log.getDomain())) {
                continue;
            }
            Deque<Step> todo = new ArrayDeque<>();
            Set<String> seen = new HashSet<>();
            todo.add(new Step(log.getInput(0), 0));
            while (!todo.isEmpty()) {
                Step s = todo.poll();
                NodeProto p = g.producer(s.tensor());
                if (p == null || !seen.add(s.tensor()) || !Model.isDefaultDomain(p.getDomain())) {
                    continue;
                }
                if (LayerKind.of(p.getOpType()) != null) {
                    out.putIfAbsent(p.getName(), log.getName());
                    if (s.layers() + 1 < LAYERS && p.getInputCount() > 0) {
                        todo.add(new Step(p.getInput(0), s.layers() + 1));
                    }
                } else if (MAGNITUDE_OPS.contains(p.getOpType())) {
                    for (String in : p.getInputList()) {
                        if (!in.isEmpty() && !g.isInitializer(in)) {
                            todo.add(new Step(in, s.layers()));
                        }
                    }
                }
            }
        }
        return out;
    }

    private record Step(String tensor, int layers) {
    }
}
