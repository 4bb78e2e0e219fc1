package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.testutil.ExampleData;
import dev.qwtonnx.testutil.Int8Anyway;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The float session made again with only the outputs the calibration pass and compensation fetch, and closed after
 * the pass where compensation does not run it: the same nodes compute the same values, so the written model is the
 * same, byte for byte.
 */
class NarrowedFloatSessionTest {
    private static byte[] quantize(Model model, QuantizeRun.Options options, List<String> log) throws Exception {
        try (CalibrationSource calib = CalibrationSources.open(ExampleData.DIR.resolve("calib"),
                InputSpecs.of(model.graph()))) {
            return QwtOnnx.quantize(model, calib).options(options).log(log::add).run().model().proto().toByteArray();
        }
    }

    /**
     * With the default budget compensation reads the float outputs the pass kept; with none it fetches them
     * from the session again, and the narrowed session must still give each.
     */
    @ParameterizedTest
    @ValueSource(longs = {-1, 0})
    void theNarrowedSessionWritesTheSameModel(long memoryMb) throws Exception {
        Model model = ModelIO.load(ExampleData.DIR.resolve("cnn.onnx"));
        QuantizeRun.Options options = memoryMb < 0 ? Int8Anyway.options()
                : Int8Anyway.options().withCwac(Int8Anyway.options().cwac().withMemoryMb(memoryMb));
        List<String> wide = new ArrayList<>();
        byte[] asMade = quantize(model, options, wide);
        assertFalse(wide.stream().anyMatch(l -> l.startsWith("float session made again")), wide.toString());

        List<String> narrow = new ArrayList<>();
        byte[] narrowed;
        System.setProperty("qwt.narrowFloatSessionFrom", "1");
        try {
            narrowed = quantize(model, options, narrow);
        } finally {
            System.clearProperty("qwt.narrowFloatSessionFrom");
        }
        assertTrue(narrow.stream().anyMatch(l -> l.startsWith("float session made again with")), narrow.toString());
        assertArrayEquals(asMade, narrowed);
    }

    /**
     * Where the pass kept every float activation compensation fits on (the default budget), the float session is
     * closed after it; without a budget it stays open for compensation to run. The written model is the same.
     */
    @org.junit.jupiter.api.Test
    void theFloatSessionIsClosedAfterThePassWhereCompensationNeedsItNoMore() throws Exception {
        Model model = ModelIO.load(ExampleData.DIR.resolve("cnn.onnx"));
        List<String> kept = new ArrayList<>();
        byte[] released = quantize(model, Int8Anyway.options(), kept);
        String line = "float session closed after the pass";
        assertTrue(kept.stream().anyMatch(l -> l.startsWith(line)), kept.toString());
        List<String> none = new ArrayList<>();
        byte[] open = quantize(model, Int8Anyway.options().withCwac(Int8Anyway.options().cwac().withMemoryMb(0)), none);
        assertFalse(none.stream().anyMatch(l -> l.startsWith(line)), none.toString());
        // The graphs, byte for byte (the metadata holds the options, which differ).
        assertArrayEquals(dev.qwtonnx.onnx.ModelProto.parseFrom(open).getGraph().toByteArray(),
                dev.qwtonnx.onnx.ModelProto.parseFrom(released).getGraph().toByteArray());
    }
}
