package dev.qwtonnx.quant;

import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.NameAuthority;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.pass.Rejection;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stores the float tables that Gather nodes read rows of (token, position and type embeddings) as
 * int8 with one scale per row, symmetric: {@code Gather(table_int8, ids)} gives the rows' int8 values,
 * {@code Gather(scales, ids)} their scales (shaped [rows, 1]), and {@code Cast} then {@code Mul}
 * make the float rows the readers had. Only the gathered rows are dequantized, never the whole
 * table, with standard operators only (no opset or domain beyond what the model has).
 *
 * <p>A table read by several Gathers is stored once, in int8, for all of them. A table read by any
 * other node (a tied output projection kept in float, a Transpose, a subgraph) or listed as a graph
 * input or output stays float for every reader: changing it for one reader would change it for the
 * others. A quantized layer tied to the table no longer reads it at this point, as the Q/DQ pass
 * gives each layer its own int8 copy.
 *
 * <p>The nodes it adds carry {@link Nodes#CREATED_BY}; the Gather keeps its name and now reads the
 * int8 table, and the Mul writes the Gather's old output, so every reader is unchanged.
 */
public final class EmbeddingQuantizer implements Pass {
    public static final String NAME = "quantize-embeddings";

    /** Tables of fewer float bytes than this stay float. */
    static final long MIN_BYTES = 1L << 20;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public PassResult run(Model model) {
        GraphEditor g = new GraphEditor(model.graph(), new NameAuthority(model.graph()));
        Map<String, List<NodeProto>> gathers = new LinkedHashMap<>();
        List<Rejection> rejections = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("Gather") || !Model.isDefaultDomain(n.getDomain()) || n.getInputCount() != 2
                    || !g.isInitializer(n.getInput(0))) {
                continue;
            }
            String why = checkGather(g, n);
            if (why != null) {
                rejections.add(new Rejection(NAME, Nodes.describe(n), why));
            } else {
                gathers.computeIfAbsent(n.getInput(0), t -> new ArrayList<>()).add(n);
            }
        }
        Map<String, List<NodeProto>> accepted = new LinkedHashMap<>();
        gathers.forEach((table, readers) -> {
            String why = checkTable(g, table, readers);
            if (why != null) {
                readers.forEach(n -> rejections.add(new Rejection(NAME, Nodes.describe(n), why)));
            } else {
                accepted.put(table, readers);
            }
        });
        if (accepted.isEmpty()) {
            return PassResult.unchanged(model, rejections);
        }
        accepted.forEach((table, readers) -> rewrite(g, table, readers));
        return PassResult.changed(model.withGraph(g.build()), rejections);
    }

    /** Why this Gather of a constant is not one whose table this pass stores in int8, or null. */
    private static String checkGather(GraphEditor g, NodeProto n) {
        TensorProto t = g.initializer(n.getInput(0));
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            return "its table is not float32";
        }
        if (t.getDimsCount() != 2) {
            return "its table has rank " + t.getDimsCount() + ", not 2";
        }
        if (4 * t.getDims(0) * t.getDims(1) < MIN_BYTES) {
            return "its table holds less than " + (MIN_BYTES >> 20) + " MB";
        }
        long axis = Nodes.intAttr(n, "axis", 0);
        if (axis != 0 && axis != -2) {
            return "it gathers along axis " + axis + ", not the rows";
        }
        if (n.getInput(1).equals(n.getInput(0))) {
            return "it reads its table as its indices";
        }
        return null;
    }

    /** Why {@code table} must stay float for {@code gathers} (all its accepted Gathers), or null. */
    private static String checkTable(GraphEditor g, String table, List<NodeProto> gathers) {
        if (g.isGraphInput(table) || g.isGraphOutput(table)) {
            return "its table '" + table + "' is a graph input or output";
        }
        for (NodeProto r : g.consumers(table)) {
            if (gathers.stream().noneMatch(x -> x == r)) {
                return "its table '" + table + "' is also read by " + Nodes.describe(r) + ", which needs it in float";
            }
        }
        if (g.useCount(table) != gathers.size()) {
            return "its table '" + table + "' is also read inside a subgraph";
        }
        return null;
    }

    private static void rewrite(GraphEditor g, String table, List<NodeProto> gathers) {
        TensorProto t = g.initializer(table);
        long[] dims = Tensors.dims(t);
        RowQuantized q = quantizeRows(Tensors.floatView(t), Math.toIntExact(dims[0]), Math.toIntExact(dims[1]));
        String qName = g.names().fresh(table + "_quantized");
        String sName = g.names().fresh(table + "_row_scale");
        g.putInitializer(Tensors.int8Tensor(qName, dims, q.values()));
        g.putInitializer(Tensors.floatTensor(sName, new long[] {dims[0], 1}, q.scales()));
        for (NodeProto n : gathers) {
            NodeProto current = g.producer(n.getOutput(0));
            String y = current.getOutput(0);
            String ids = current.getInput(1);
            String rows = g.names().fresh(y + "_int8");
            String scales = g.names().fresh(y + "_row_scale");
            String floats = g.names().fresh(y + "_unscaled");
            NodeProto gather = g.replace(current, current.toBuilder().setInput(0, qName).setOutput(0, rows).build());
            g.insertAfter(gather,
                    Nodes.node("Gather", g.names().fresh(current.getName() + "_row_scale"), List.of(sName, ids),
                            List.of(scales), NAME),
                    Nodes.node("Cast", g.names().fresh(current.getName() + "_Cast"), List.of(rows), List.of(floats),
                            NAME, Nodes.intAttribute("to", DataType.FLOAT.code)),
                    Nodes.node("Mul", g.names().fresh(current.getName() + "_Mul"), List.of(floats, scales),
                            List.of(y), NAME));
        }
        g.removeInitializer(table);
    }

    /** A table's int8 values (row-major) and one scale per row. */
    record RowQuantized(byte[] values, float[] scales) {
    }

    /**
     * Each row of a [rows, cols] table symmetric in int8 at max|row| / 127; an all-zero row gets
     * scale 0 (its values are zero whatever the scale).
     */
    static RowQuantized quantizeRows(FloatBuffer w, int rows, int cols) {
        byte[] q = new byte[Math.multiplyExact(rows, cols)];
        float[] scales = new float[rows];
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            float max = 0f;
            for (int c = 0; c < cols; c++) {
                max = Math.max(max, Math.abs(w.get(base + c)));
            }
            float scale = max / 127f;
            scales[r] = scale;
            if (scale == 0f || !Float.isFinite(scale)) {
                continue;
            }
            for (int c = 0; c < cols; c++) {
                q[base + c] = (byte) Math.max(-127, Math.min(127, Math.round(w.get(base + c) / scale)));
            }
        }
        return new RowQuantized(q, scales);
    }
}
