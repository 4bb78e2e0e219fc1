package dev.qwtonnx.quant;

import static dev.qwtonnx.testutil.OrtTestSupport.FLOAT;
import static dev.qwtonnx.testutil.OrtTestSupport.INT64;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.pass.PassResult;
import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.testutil.OrtTestSupport;
import dev.qwtonnx.testutil.OrtTestSupport.ModelBuilder;
import dev.qwtonnx.verify.Fidelity;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Gather tables in int8 with per-row scales: one int8 table for every Gather of a shared table,
 * rows within half a step of float in ORT, and a table another node needs in float left as it is.
 */
class EmbeddingQuantizerTest {
    /** A table of exactly {@link EmbeddingQuantizer#MIN_BYTES} floats' bytes. */
    private static final int ROWS = 4096;
    private static final int COLS = (int) (EmbeddingQuantizer.MIN_BYTES / 4 / ROWS);

    /**
     * Two Gathers (token ids and positions) of one table [rows, COLS], their sum the output; with
     * {@code tiedMatMul}, a MatMul [., rows] x table [rows, COLS] reads the same table as its weight.
     */
    private static Model model(boolean tiedMatMul) {
        return model(tiedMatMul, ROWS);
    }

    private static Model model(boolean tiedMatMul, int rows) {
        ModelBuilder b = new ModelBuilder(3, 13);
        b.input("ids", INT64, 1, 6).input("pos", INT64, 1, 6);
        b.randomInit("table", 1.0, rows, COLS);
        String a = b.node("Gather", List.of("table", "ids"), "tok");
        String p = b.node("Gather", List.of("table", "pos"), "posemb");
        b.node("Add", List.of(a, p), "y");
        b.output("y", FLOAT, 1, 6, COLS);
        if (tiedMatMul) {
            b.input("h", FLOAT, 1, 6, rows);
            b.node("MatMul", List.of("h", "table"), "logits");
            b.output("logits", FLOAT, 1, 6, COLS);
        }
        return b.build();
    }

    private static Map<String, HostTensor> inputs(Random r, boolean tied) {
        long[] ids = new long[6];
        long[] pos = new long[6];
        for (int i = 0; i < 6; i++) {
            ids[i] = r.nextInt(ROWS);
            pos[i] = i;
        }
        Map<String, HostTensor> in = new java.util.HashMap<>(Map.of("ids", HostTensor.ofLongs(new long[] {1, 6}, ids),
                "pos", HostTensor.ofLongs(new long[] {1, 6}, pos)));
        if (tied) {
            in.put("h", OrtTestSupport.randomFloats(r, 1, 6, ROWS));
        }
        return in;
    }

    private static List<NodeProto> nodes(Model m, String op) {
        return m.graph().getNodeList().stream().filter(n -> n.getOpType().equals(op)).toList();
    }

    @Test
    void aSharedTableIsStoredOnceInInt8AndEveryRowStaysWithinHalfAStep() {
        Model in = model(false);
        PassResult r = new EmbeddingQuantizer().run(in);
        assertTrue(r.changed());
        Model out = r.model();
        ModelChecker.check(out);
        GraphEditor g = new GraphEditor(out.graph());
        assertNull(g.initializer("table"), "the float table is gone");
        List<NodeProto> gathers = nodes(out, "Gather");
        assertEquals(4, gathers.size(), "two row Gathers and two scale Gathers");
        List<String> int8Tables = new ArrayList<>();
        for (NodeProto n : gathers) {
            TensorProto t = g.initializer(n.getInput(0));
            if (t.getDataType() == TensorProto.DataType.INT8_VALUE) {
                int8Tables.add(t.getName());
            }
        }
        assertEquals(2, int8Tables.size());
        assertEquals(int8Tables.get(0), int8Tables.get(1), "both Gathers read the same int8 table");
        java.util.Set<String> original = new java.util.HashSet<>();
        in.graph().getNodeList().forEach(n -> original.add(n.getName()));
        for (NodeProto n : out.graph().getNodeList()) {
            if (!original.contains(n.getName())) {
                assertEquals(EmbeddingQuantizer.NAME, Nodes.metadata(n, Nodes.CREATED_BY), Nodes.describe(n));
            }
        }
        // Each row is within half its step (max|row| / 127 / 2) of float, the sum of two rows within one step.
        float[] table = Tensors.floats(new GraphEditor(in.graph()).initializer("table"));
        float step = 0;
        for (int row = 0; row < ROWS; row++) {
            float max = 0;
            for (int c = 0; c < COLS; c++) {
                max = Math.max(max, Math.abs(table[row * COLS + c]));
            }
            step = Math.max(step, max / 127f);
        }
        Random rnd = new Random(7);
        for (int i = 0; i < 5; i++) {
            Map<String, HostTensor> x = inputs(rnd, false);
            OrtTestSupport.assertCloseAbs(OrtTestSupport.run(in, x), OrtTestSupport.run(out, x), step * 1.0001);
        }
    }

    @Test
    void aTableUnderAMegabyteStaysFloat() {
        Model in = model(false, ROWS / 2);
        PassResult r = new EmbeddingQuantizer().run(in);
        assertFalse(r.changed());
        assertEquals(2, r.rejections().size());
        r.rejections().forEach(x -> assertTrue(x.reason().contains("less than 1 MB"), x.toString()));
    }

    @Test
    void aTableAnotherNodeReadsInFloatIsLeftAsItIs() {
        Model in = model(true);
        PassResult r = new EmbeddingQuantizer().run(in);
        assertFalse(r.changed());
        assertSame(in, r.model());
        assertEquals(2, r.rejections().size());
        r.rejections().forEach(x -> assertTrue(x.reason().contains("also read by MatMul node"), x.toString()));
    }

    /**
     * Through the whole run, a table tied to a quantized MatMul is quantized for the Gathers too: the
     * MatMul has its own int8 copy by then. Outputs stay close to float, ORT runs the MatMul as an
     * integer kernel, and --embeddings float keeps the table.
     */
    @Test
    void aTableTiedToAQuantizedMatMulIsQuantizedForTheGathersToo() {
        Model in = model(true);
        Random rnd = new Random(11);
        List<Sample> calib = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            calib.add(new Sample("s" + i, inputs(rnd, true)));
        }
        QuantizeRun.Options options = QuantizeRun.Options.defaults().withVerifyBetweenPasses(true);
        QuantizeRun.Result r = QwtOnnx.quantize(in, CalibrationSources.ofList(calib), options, Progress.NONE, null);
        GraphEditor g = new GraphEditor(r.model().graph());
        assertNull(g.initializer("table"), "no float copy of the table is left");
        assertEquals(2, nodes(r.model(), "Cast").size());
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(1, OrtKernels.count(ops, OrtKernels.INTEGER_OPS), ops.toString());
        for (int i = 0; i < 5; i++) {
            Map<String, HostTensor> x = inputs(rnd, true);
            Map<String, HostTensor> f = OrtTestSupport.run(in, x);
            Map<String, HostTensor> q = OrtTestSupport.run(r.model(), x);
            for (String out : List.of("y", "logits")) {
                double c = Fidelity.cosine(f.get(out).toFloats(), q.get(out).toFloats());
                assertTrue(c > 0.999, out + " cosine " + c);
            }
        }
        QuantizeRun.Result kept = QwtOnnx.quantize(in, CalibrationSources.ofList(calib),
                options.withEmbeddings(EmbeddingPrecision.FLOAT), Progress.NONE, null);
        assertEquals(TensorProto.DataType.FLOAT_VALUE, new GraphEditor(kept.model().graph()).initializer("table").getDataType());
        assertEquals(0, nodes(kept.model(), "Cast").size());
    }
}
