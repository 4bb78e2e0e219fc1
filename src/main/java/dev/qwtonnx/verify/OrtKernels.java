package dev.qwtonnx.verify;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.NodeProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** What ORT actually runs: the node list of the graph ORT optimizes a model into. */
public final class OrtKernels {
    /** Integer kernels ORT's CPU provider fuses QDQ layers into. */
    public static final Set<String> INTEGER_OPS = Set.of("QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat",
            "ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QLinearAdd", "QLinearMul");

    /** The float ops that, left in an optimized quantized graph, mean a layer was not fused. */
    public static final Set<String> FLOAT_LAYER_OPS = Set.of("Conv", "MatMul", "Gemm", "FusedConv", "FusedMatMul",
            "FusedGemm");

    private OrtKernels() {
    }

    /**
     * Op-type counts of the model ORT builds at the extended optimization level (where its QDQ
     * fusions run; the higher level adds only layout changes).
     */
    public static Map<String, Integer> optimizedOpCounts(Model model) {
        Path tmp = null;
        try {
            tmp = Files.createTempFile("qwt-optimized-", ".onnx");
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
                opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
                opts.setOptimizedModelFilePath(tmp.toString());
                try (OrtSession s = OrtEnvironment.getEnvironment().createSession(model.toBytes(), opts)) {
                    // Creating the session writes the optimized model.
                }
            }
            Model optimized = ModelIO.load(tmp);
            Map<String, Integer> counts = new TreeMap<>();
            for (NodeProto n : optimized.graph().getNodeList()) {
                counts.merge(n.getOpType(), 1, Integer::sum);
            }
            return counts;
        } catch (OrtException e) {
            throw new QwtException("ONNX Runtime cannot load the model: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new QwtException("cannot write ORT's optimized model: " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // A leftover temp file is harmless.
                }
            }
        }
    }

    public static int count(Map<String, Integer> counts, Set<String> ops) {
        return counts.entrySet().stream().filter(e -> ops.contains(e.getKey())).mapToInt(Map.Entry::getValue).sum();
    }
}
