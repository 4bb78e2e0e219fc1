package dev.qwtonnx.verify;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Subgraphs;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.TypeProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Several models of the same inputs in one graph, for a measuring session: each model's names
 * (node outputs, initializers, node names, and every name inside its subgraphs) get a prefix of its
 * own, the graph inputs stay shared. One session over the whole is one model load, one graph
 * optimization and one run per sample, where a session per model repeats all three (ORT's session
 * start is most of a measuring pass on a transformer).
 */
final class MeasuringGraph {
    private MeasuringGraph() {
    }

    /** The float model's prefix and each subject's, in order. */
    record Prefixes(String floatPrefix, String base) {
        String subject(int i) {
            return base + "s" + i + "/";
        }
    }

    /**
     * Prefixes no name of these models starts with, or null when the models cannot share a graph:
     * model-local functions, sparse initializers or training info (not renamed here), or an operator
     * set imported at two versions (one graph has one version per domain).
     */
    static Prefixes prefixes(Model floatModel, List<Model> subjects) {
        List<Model> all = new ArrayList<>();
        all.add(floatModel);
        all.addAll(subjects);
        Map<String, Long> opsets = new LinkedHashMap<>();
        Set<String> names = new HashSet<>();
        for (Model m : all) {
            ModelProto p = m.proto();
            if (p.getFunctionsCount() > 0 || p.getTrainingInfoCount() > 0 || Subgraphs.anyGraph(p.getGraph(), g -> g.getSparseInitializerCount() > 0)) {
                return null;
            }
            for (OperatorSetIdProto o : p.getOpsetImportList()) {
                String d = Model.isDefaultDomain(o.getDomain()) ? "" : o.getDomain();
                Long v = opsets.putIfAbsent(d, o.getVersion());
                if (v != null && v != o.getVersion()) {
                    return null;
                }
            }
            names.addAll(defined(p.getGraph()));
            p.getGraph().getInputList().forEach(v -> names.add(v.getName()));
        }
        for (int i = 0; ; i++) {
            String base = "qwt" + (i == 0 ? "" : Integer.toString(i)) + ".";
            if (names.stream().noneMatch(n -> n.startsWith(base))) {
                return new Prefixes(base + "float/", base);
            }
        }
    }

    /** Renames the names {@code graph} defines (its graph inputs excepted) to {@code prefix} + name. */
    static UnaryOperator<String> renamer(GraphProto graph, String prefix) {
        Set<String> defined = defined(graph);
        return n -> n.isEmpty() || !defined.contains(n) ? n : prefix + n;
    }

    /** {@code graph} with every name {@code rename} changes changed, in its subgraphs too, and its node names prefixed. */
    static GraphProto prefixed(GraphProto graph, UnaryOperator<String> rename, String prefix) {
        GraphProto.Builder b = graph.toBuilder();
        for (int k = 0; k < b.getNodeCount(); k++) {
            NodeProto.Builder n = Subgraphs.withSubgraphs(b.getNode(k), sg -> prefixed(sg, rename, prefix)).toBuilder();
            if (!n.getName().isEmpty()) {
                n.setName(prefix + n.getName());
            }
            for (int i = 0; i < n.getInputCount(); i++) {
                n.setInput(i, rename.apply(n.getInput(i)));
            }
            for (int i = 0; i < n.getOutputCount(); i++) {
                n.setOutput(i, rename.apply(n.getOutput(i)));
            }
            b.setNode(k, n);
        }
        for (TensorProto.Builder t : b.getInitializerBuilderList()) {
            t.setName(rename.apply(t.getName()));
        }
        for (List<ValueInfoProto.Builder> list : List.of(b.getInputBuilderList(), b.getOutputBuilderList(),
                b.getValueInfoBuilderList())) {
            for (ValueInfoProto.Builder v : list) {
                v.setName(rename.apply(v.getName()));
            }
        }
        return b.build();
    }

    /**
     * One model: the float model's graph under {@code floatPrefix}, then each measuring graph (already
     * prefixed), the float model's inputs as the inputs, and {@code outputs} (float scalars) as the outputs.
     */
    static Model combine(Model floatModel, String floatPrefix, List<Model> measuring, List<String> outputs) {
        GraphProto f = prefixed(floatModel.graph(), renamer(floatModel.graph(), floatPrefix), floatPrefix);
        GraphProto.Builder g = f.toBuilder().clearOutput().setName("layer-fidelity");
        // An initializer also listed as a graph input (IR 3's way to give it a default) is renamed with the
        // float model's names; the input of its old name would be one nobody feeds.
        Set<String> initializers = new HashSet<>();
        f.getInitializerList().forEach(t -> initializers.add(t.getName()));
        g.clearInput();
        f.getInputList().stream().filter(v -> !initializers.contains(v.getName())).forEach(g::addInput);
        ModelProto.Builder p = floatModel.proto().toBuilder().clearGraph();
        Map<String, Long> opsets = new LinkedHashMap<>();
        long ir = p.getIrVersion();
        // A model and its uncompensated self hold the same integer weights and tables (compensation changes
        // only scales and biases): each is given to ORT once.
        Set<String> described = new HashSet<>();
        f.getValueInfoList().forEach(v -> described.add(v.getName()));
        Map<TensorKey, String> seen = new HashMap<>();
        f.getInitializerList().forEach(t -> seen.putIfAbsent(TensorKey.of(t), t.getName()));
        for (Model m : measuring) {
            Map<String, String> same = new HashMap<>();
            List<TensorProto> own = new ArrayList<>();
            for (TensorProto t : m.graph().getInitializerList()) {
                TensorKey k = TensorKey.of(t);
                String first = k == null ? null : seen.putIfAbsent(k, t.getName());
                if (first != null) {
                    same.put(t.getName(), first);
                } else {
                    own.add(t);
                }
            }
            GraphProto s = same.isEmpty() ? m.graph()
                    : prefixed(m.graph().toBuilder().clearInitializer().addAllInitializer(own).build(),
                            n -> same.getOrDefault(n, n), "");
            g.addAllNode(s.getNodeList()).addAllInitializer(s.getInitializerList());
            // A shared name (a graph input) may have a value_info in more than one model: one entry is kept.
            s.getValueInfoList().stream().filter(v -> described.add(v.getName())).forEach(g::addValueInfo);
            for (OperatorSetIdProto o : m.proto().getOpsetImportList()) {
                opsets.putIfAbsent(Model.isDefaultDomain(o.getDomain()) ? "" : o.getDomain(), o.getVersion());
            }
            ir = Math.max(ir, m.proto().getIrVersion());
        }
        for (OperatorSetIdProto o : p.getOpsetImportList()) {
            opsets.remove(Model.isDefaultDomain(o.getDomain()) ? "" : o.getDomain());
        }
        opsets.forEach((d, v) -> p.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(d).setVersion(v)));
        TypeProto scalar = TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE)).build();
        for (String o : outputs) {
            g.addOutput(ValueInfoProto.newBuilder().setName(o).setType(scalar));
        }
        return new Model(p.setIrVersion(ir).setGraph(g).build());
    }

    /** An initializer's content, for the large raw ones (comparing the small ones costs more than it saves). */
    private record TensorKey(int type, List<Long> dims, com.google.protobuf.ByteString raw) {
        static TensorKey of(TensorProto t) {
            return t.hasRawData() && t.getRawData().size() >= 4096 && !t.hasDataLocation()
                    ? new TensorKey(t.getDataType(), t.getDimsList(), t.getRawData()) : null;
        }

        /**
         * Hashes a sample of the bytes, not all of them: hashing every weight of three models byte by byte
         * took a fifth of a second on MiniLM. Equal keys still compare every byte.
         */
        @Override
        public int hashCode() {
            int h = 31 * type + dims.hashCode();
            int n = raw.size();
            for (int i = 0; i < SAMPLED; i++) {
                h = 31 * h + raw.byteAt((int) ((long) i * n / SAMPLED));
            }
            return 31 * h + n;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof TensorKey k && type == k.type && dims.equals(k.dims) && raw.equals(k.raw);
        }

        private static final int SAMPLED = 256;
    }

    /** Names {@code graph} defines: node outputs and initializers, and in its subgraphs their inputs too. */
    private static Set<String> defined(GraphProto graph) {
        Set<String> out = new HashSet<>();
        Subgraphs.forEachGraph(graph, g -> {
            if (g != graph) {
                g.getInputList().forEach(v -> out.add(v.getName()));
            }
            g.getInitializerList().forEach(t -> out.add(t.getName()));
            g.getNodeList().forEach(n -> n.getOutputList().stream().filter(o -> !o.isEmpty()).forEach(out::add));
        });
        return out;
    }
}
