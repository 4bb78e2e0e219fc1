package dev.qwtonnx.quant;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.TensorProto;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Float weights of operators no pass of this tool quantizes: recurrent cells, transposed convolutions, einsums,
 * the fused operators of ORT's transformer optimizer (Attention holds the Q, K and V weights,
 * EmbedLayerNormalization the word embeddings), and ORT's FusedConv and FusedMatMul where prepare could not
 * turn them back into Conv and MatMul (prepare/UnfuseOrtOps). They stay float in the output, which the summary says, as the
 * output's size and speed depend on them: an encoder fused by ORT keeps a quarter of its layers' weights and its
 * embedding table in float.
 */
public final class UntouchedWeights {
    /** Operators of the default domain that compute with a weight of their own, beside Conv, MatMul and Gemm. */
    static final Set<String> DEFAULT_DOMAIN = Set.of("ConvTranspose", "LSTM", "GRU", "RNN", "Einsum");
    /** The same, of ORT's com.microsoft domain. */
    static final Set<String> MICROSOFT = Set.of("Attention", "MultiHeadAttention", "EmbedLayerNormalization",
            "FusedConv", "FusedMatMul", "FusedGemm", "NhwcConv");
    /** How an operator of ORT's domain is named in a line. */
    private static final String MICROSOFT_PREFIX = Model.MICROSOFT_DOMAIN + " ";

    /** Least float weight bytes of one operator for its line: a few small transposed convolutions are no news. */
    static final long LEAST_BYTES = 64 << 10;

    private UntouchedWeights() {
    }

    /**
     * One line naming, per operator, how many nodes of {@code model} (its subgraphs too) hold float weights that
     * stay float and how many bytes; empty where there are none.
     */
    public static String note(Model model) {
        Map<String, long[]> byOp = byOperator(model);
        return byOp.isEmpty() ? "" : "weights of operators qwt-onnx does not quantize stay float: "
                + String.join(", ", lines(byOp))
                + (byOp.keySet().stream().anyMatch(op -> op.startsWith(MICROSOFT_PREFIX)) ? FUSED_HINT : "");
    }

    /**
     * What to do about ORT's fused operators (its transformer optimizer's, or those of a graph ORT saved after its
     * own optimizations): quantize the export from before them, and let ORT fuse at load. The fused operators
     * (attention, embeddings) stay float, so the fused model quantized runs slower than the plain export quantized
     * (docs/benchmarks.md, an encoder fused by ORT's transformer optimizer).
     */
    static final String FUSED_HINT = " (operators ORT's graph optimizations fuse: quantizing the model from before"
            + " them quantizes these too)";

    /** Per operator with {@link #LEAST_BYTES} or more of such weights: "2 LSTM nodes (1.1 MB)". */
    public static List<String> groups(Model model) {
        return lines(byOperator(model));
    }

    private static List<String> lines(Map<String, long[]> byOp) {
        return byOp.entrySet().stream()
                .map(e -> String.format(Locale.ROOT, "%d %s node%s (%.1f MB)", e.getValue()[0], e.getKey(),
                        e.getValue()[0] == 1 ? "" : "s", e.getValue()[1] / 1e6))
                .toList();
    }

    /** Nodes and float weight bytes per operator ("com.microsoft Attention"), those of {@link #LEAST_BYTES} or more. */
    private static Map<String, long[]> byOperator(Model model) {
        Map<String, TensorProto> initializers = new HashMap<>();
        Subgraphs.forEachGraph(model.graph(), g -> g.getInitializerList().forEach(t -> initializers.putIfAbsent(t.getName(), t)));
        Map<String, long[]> byOp = new LinkedHashMap<>(); // nodes, bytes
        Subgraphs.forEachNode(model.graph(), n -> {
            boolean microsoft = n.getDomain().equals(Model.MICROSOFT_DOMAIN);
            if (!(microsoft ? MICROSOFT : Model.isDefaultDomain(n.getDomain()) ? DEFAULT_DOMAIN : Set.of())
                    .contains(n.getOpType())) {
                return;
            }
            long bytes = 0;
            for (String in : n.getInputList()) {
                TensorProto t = initializers.get(in);
                if (t != null && t.getDataType() == TensorProto.DataType.FLOAT_VALUE) {
                    bytes += 4 * dev.qwtonnx.model.HostTensor.numel(dev.qwtonnx.model.Tensors.dims(t));
                }
            }
            if (bytes > 0) {
                long[] c = byOp.computeIfAbsent((microsoft ? MICROSOFT_PREFIX : "") + n.getOpType(), k -> new long[2]);
                c[0]++;
                c[1] += bytes;
            }
        });
        byOp.values().removeIf(c -> c[1] < LEAST_BYTES);
        return byOp;
    }
}
