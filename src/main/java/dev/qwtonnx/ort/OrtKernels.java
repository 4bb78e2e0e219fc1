package dev.qwtonnx.ort;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.PendingFiles;
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
        return opCounts(optimized(model));
    }

    /** Op-type counts over the graph and its subgraphs (If branches, Loop and Scan bodies). */
    public static Map<String, Integer> opCounts(Model m) {
        Map<String, Integer> counts = new TreeMap<>();
        count(m.graph(), counts);
        return counts;
    }

    private static void count(dev.qwtonnx.onnx.GraphProto g, Map<String, Integer> counts) {
        for (NodeProto n : g.getNodeList()) {
            counts.merge(n.getOpType(), 1, Integer::sum);
            for (dev.qwtonnx.onnx.AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    count(a.getG(), counts);
                }
                for (dev.qwtonnx.onnx.GraphProto sub : a.getGraphsList()) {
                    count(sub, counts);
                }
            }
        }
    }

    /**
     * The names of float Conv/MatMul/Gemm nodes in ORT's optimized graph that read a
     * DequantizeLinear output: quantized layers ORT did not fuse into an integer kernel.
     */
    public static java.util.List<String> unfusedLayers(Model optimized) {
        java.util.Set<String> dqOutputs = new java.util.HashSet<>();
        for (NodeProto n : optimized.graph().getNodeList()) {
            if (n.getOpType().equals("DequantizeLinear")) {
                dqOutputs.addAll(n.getOutputList());
            }
        }
        java.util.List<String> out = new java.util.ArrayList<>();
        for (NodeProto n : optimized.graph().getNodeList()) {
            if (FLOAT_LAYER_OPS.contains(n.getOpType()) && n.getInputList().stream().anyMatch(dqOutputs::contains)) {
                out.add(n.getName());
            }
        }
        return out;
    }

    /**
     * Models at least this big (serialized) have ORT write their optimized copy's large initializers
     * to a data file: only the graph is wanted, and inline weights would be serialized by ORT and
     * read back into the heap (about twice the model's size).
     */
    static final long EXTERNAL_FROM = 64L << 20;

    /**
     * The model ORT builds at the extended optimization level. The optimized copy of a model of
     * {@link #EXTERNAL_FROM} or more keeps its initializers in a data file beside it (both
     * temporary), read back memory-mapped.
     */
    public static Model optimized(Model model) {
        Path tmp = null;
        Path data = null;
        try {
            // Registered like the output's temporary file, so a kill does not leave it in the temp folder.
            Path dir = Path.of(System.getProperty("java.io.tmpdir"));
            tmp = PendingFiles.createTemp(dir, "qwt-optimized-", ".onnx");
            boolean big = model.serializedSize() >= EXTERNAL_FROM;
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
                opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
                opts.setOptimizedModelFilePath(tmp.toString());
                // Only the graph is wanted: packed copies of the weights would be made for nothing.
                // (OrtSessions.create does not set it again for a model over 1 GB.)
                opts.addConfigEntry("session.disable_prepacking", "1");
                if (big) {
                    data = PendingFiles.createTemp(dir, tmp.getFileName() + ".", ".data");
                    opts.addConfigEntry("session.optimized_model_external_initializers_file_name",
                            data.getFileName().toString());
                    opts.addConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes",
                            Long.toString(OrtSessions.IN_MEMORY_MIN_TENSOR));
                }
                try (OrtSessions.Handle s = OrtSessions.create(model, opts)) {
                    // Creating the session writes the optimized model.
                }
            }
            return ModelIO.load(tmp);
        } catch (OrtException e) {
            throw new QwtException("ONNX Runtime cannot load the model: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new QwtException("cannot write ORT's optimized model: " + e.getMessage(), e);
        } finally {
            // Deleting a mapped data file is fine: the mapping keeps the pages until it is dropped.
            for (Path p : new Path[] {tmp, data}) {
                if (p != null) {
                    PendingFiles.remove(p);
                    try {
                        Files.deleteIfExists(p);
                    } catch (IOException ignored) {
                        // A leftover temp file is harmless.
                    }
                }
            }
        }
    }

    public static int count(Map<String, Integer> counts, Set<String> ops) {
        return counts.entrySet().stream().filter(e -> ops.contains(e.getKey())).mapToInt(Map.Entry::getValue).sum();
    }
}
