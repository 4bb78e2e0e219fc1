package dev.qwtonnx.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.testutil.ExampleData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model whose nodes are written out of topological order (onnxconverter-common's float16
 * conversion writes its input Casts last), which ORT loads by sorting it: every command takes it as
 * ORT does, and what quantize writes is in order.
 */
class UnsortedModelCliTest {
    @TempDir
    Path tmp;

    @Test
    void everyCommandTakesAModelWithItsNodesOutOfOrder() throws Exception {
        Model example = ModelIO.load(ExampleData.DIR.resolve("cnn.onnx"));
        List<NodeProto> nodes = new ArrayList<>(example.graph().getNodeList());
        Collections.reverse(nodes);
        GraphProto reversed = example.graph().toBuilder().clearNode().addAllNode(nodes).build();
        Path in = tmp.resolve("reversed.onnx");
        Files.write(in, example.withGraph(reversed).proto().toByteArray());
        String calib = ExampleData.DIR.resolve("calib").toString();

        Path out = tmp.resolve("q.onnx");
        CliRun q = CliRun.of(in.toString(), out.toString(), "--calib", calib, "--keep-slow-int8", "--no-report");
        assertEquals(0, q.code(), q.err());
        Model written = ModelIO.load(out);
        ModelChecker.checkForRuntime(written);
        assertTrue(written.graph().getNodeList().stream().anyMatch(n -> n.getOpType().startsWith("QLinear")
                || n.getOpType().equals("QuantizeLinear")), "nothing quantized");

        CliRun v = CliRun.of("verify", in.toString(), out.toString(), "--data", calib, "--runs", "0");
        assertEquals(0, v.code(), v.err());
        CliRun c = CliRun.of("compensate", in.toString(), out.toString(), tmp.resolve("c.onnx").toString(), "--calib",
                calib, "--quiet");
        assertEquals(0, c.code(), c.err());
    }
}
