package dev.qwtonnx.verify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.MiniLm;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** verify on another tool's model: langchain4j's dynamically quantized all-MiniLM-L6-v2. */
@Tag("model")
class MiniLmVerifyTest {
    @Test
    void everyDynamicLayerOfTheOtherToolIsFoundAndMatchedThroughItsWeight(@TempDir Path dir) throws Exception {
        assumeTrue(Fortunes.available(), "Debian's fortunes package is not installed (.ci/run installs it)");
        Path fp = MiniLm.resourceFile("all-minilm-l6-v2.onnx", dir);
        Path qp = MiniLm.resourceFile("all-minilm-l6-v2-q.onnx", dir);
        Model f = ModelIO.load(fp);
        Model q = ModelIO.load(qp);
        var samples = CalibrationSources.ofList(MiniLm.samples(Fortunes.load(7).subList(0, 3), 64));
        Report r = Verifier.verify(new Verifier.Subject(f, fp), new Verifier.Subject(q, qp), samples, "fortunes",
                new Verifier.Options(0), null, Progress.NONE);
        assertEquals(36, r.layers().found());
        assertEquals(36, r.layers().matched());
        assertEquals(36, r.layers().layers().stream().map(Report.LayerFidelity::floatNode).distinct().count());
        for (Report.LayerFidelity l : r.layers().layers()) {
            assertEquals("dynamic", l.style());
            assertEquals("weight", l.matchedBy(), "the tool renamed its nodes: " + l.node());
            // The float node is the MatMul the quantized one was made from (the tool appends "_quant").
            assertEquals(l.floatNode() + "_quant", l.node());
            assertTrue(l.localSqnrDb() != null && l.localSqnrDb() > 15, l.toString());
        }
        assertEquals(36, r.runtime().quantizedModel().integerKernels());
        assertEquals(0, r.runtime().unfused().size());
        assertEquals(null, r.provenance().tool());
        assertTrue(r.outputs().get(0).meanCosine() > 0.95, r.outputs().toString());
    }
}
