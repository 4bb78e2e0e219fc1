package dev.qwtonnx.e2e;

import dev.qwtonnx.run.QuantizeRun;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.Images;
import dev.qwtonnx.testutil.Int8Anyway;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The PP-OCRv4 text detector (fetched from npm by tools/fetch-models.sh) quantized end to end. */
@Tag("model")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PpOcrDetEndToEndTest {
    static final Path MODEL = Path.of(".cache/models/ch_PP-OCRv4_det_infer.onnx");
    static final int SIZE = 256;

    Model floatModel;
    List<Sample> calib;
    List<Sample> eval;

    @BeforeAll
    void load() throws Exception {
        assumeTrue(Files.exists(MODEL), "PP-OCRv4 detector not fetched (tools/fetch-models.sh)");
        assumeTrue(Fortunes.available(), "Debian's fortunes package is not installed (.ci/run installs it)");
        Images.DetectorData data = Images.detectorData(SIZE, 8);
        calib = data.calib();
        eval = data.eval();
        floatModel = ModelIO.load(MODEL);
    }

    /** IoU of the probability maps thresholded at 0.3, averaged over samples. */
    static double meanIoU(Model a, Model b, List<Sample> samples) {
        double sum = 0;
        try (OrtRunner ra = new OrtRunner(a, List.of()); OrtRunner rb = new OrtRunner(b, List.of())) {
            String out = a.graph().getOutput(0).getName();
            for (Sample s : samples) {
                FloatTensor pa = ra.run(s, List.of(out)).get(out);
                FloatTensor pb = rb.run(s, List.of(out)).get(out);
                long inter = 0;
                long union = 0;
                for (int i = 0; i < pa.data().length; i++) {
                    boolean x = pa.data()[i] > 0.3f;
                    boolean y = pb.data()[i] > 0.3f;
                    inter += x && y ? 1 : 0;
                    union += x || y ? 1 : 0;
                }
                sum += union == 0 ? 1 : (double) inter / union;
            }
        }
        return sum / samples.size();
    }

    @Test
    void everyConvRunsAsQLinearConvAndTheTextMapStaysClose() {
        long t0 = System.nanoTime();
        QuantizeRun.Result r = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), Int8Anyway.options(),
                Progress.NONE, null);
        double seconds = (System.nanoTime() - t0) / 1e9;
        int convs = r.plan().layers().size();
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        double iou = meanIoU(r.prepared(), r.model(), eval);
        double iouNone = meanIoU(r.prepared(), r.uncompensated(), eval);
        System.out.printf("PP-OCRv4 det: %d convs quantized; IoU cwac %.4f none %.4f; quantize %.1f s; ORT ops %s%n",
                convs, iou, iouNone, seconds, ops);
        assertTrue(convs >= 60, "convs " + convs);
        assertEquals(convs, ops.getOrDefault("QLinearConv", 0), ops.toString());
        // Just below the figures printed above: the output is deterministic up to ORT's thread scheduling.
        assertTrue(iou >= 0.92, "IoU " + iou);
        assertTrue(iouNone >= 0.895, "IoU without compensation " + iouNone);
        assertTrue(iou >= iouNone + 0.015, "cwac " + iou + " vs none " + iouNone);
    }

    /**
     * By default the layers the cost model estimates slower in int8 (the depthwise Convs, the small maps)
     * stay float: fewer int8 layers, each still a QLinearConv, and a map closer to float than every layer
     * in int8 gives.
     */
    @Test
    void byDefaultTheLayersThatDoNotPayStayFloat() {
        QuantizeRun.Result r = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), QuantizeRun.Options.defaults(),
                Progress.NONE, null);
        int convs = r.plan().layers().size();
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        double iou = meanIoU(r.prepared(), r.model(), eval);
        long slower = r.plan().rejected().stream().filter(s -> s.contains("int8 slower than float")).count();
        System.out.printf("PP-OCRv4 det default: %d convs int8, %d kept float by the cost model; IoU %.4f%n", convs, slower, iou);
        assertTrue(convs >= 15 && convs < 60, "convs " + convs);
        assertTrue(slower >= 62 - convs - 2, r.plan().rejected().toString());
        assertEquals(convs, ops.getOrDefault("QLinearConv", 0), ops.toString());
        // Just below the 0.983 printed: every-layer int8 gives 0.93.
        assertTrue(iou >= 0.97, "IoU " + iou);
    }

    /** Quantized at opset 21 (plain PTQ), every Conv still runs as QLinearConv and the map agrees with opset 13's. */
    @Test
    void atOpset21TheDetectorIsQuantizedAsAt13() {
        QuantizeRun.Options at13 = QuantizeRun.Options.defaults()
                .withCwac(dev.qwtonnx.cwac.CwacOptions.defaults().withMethod(dev.qwtonnx.cwac.CwacOptions.Method.NONE));
        QuantizeRun.Result base = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), at13, Progress.NONE, null);
        QuantizeRun.Result r = QwtOnnx.quantize(floatModel, CalibrationSources.ofList(calib), at13.withTargetOpset(21),
                Progress.NONE, null);
        assertEquals(21, r.model().opsetVersion(""));
        Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
        assertEquals(r.plan().layers().size(), ops.getOrDefault("QLinearConv", 0), ops.toString());
        double iou13 = meanIoU(base.prepared(), base.model(), eval);
        double iou21 = meanIoU(r.prepared(), r.model(), eval);
        double across = meanIoU(base.prepared(), r.prepared(), eval);
        System.out.printf("PP-OCRv4 det plain PTQ: IoU at opset 13 %.4f, at 21 %.4f; float 13 vs float 21 %.4f%n",
                iou13, iou21, across);
        assertEquals(1.0, across, 1e-3);
        assertEquals(iou13, iou21, 0.005);
        assertTrue(iou13 >= 0.895, "IoU at opset 13 " + iou13);
    }
}
