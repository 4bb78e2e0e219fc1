package dev.qwtonnx.scratch;

import ai.onnxruntime.*;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.model.*;
import dev.qwtonnx.testutil.*;
import java.nio.file.Path;
import java.util.*;
import org.junit.jupiter.api.Test;

class ScratchDump {
    @Test
    void dump() throws Exception {
        Model f = ModelIO.load(Path.of("/tmp/ppocr13.onnx"));
        var imgs = new ArrayList<java.awt.image.BufferedImage>();
        var lines = Fortunes.load(7);
        for (int i = 0; i < 4; i++) imgs.add(Images.textPage(lines.subList(i * 20, i * 20 + 20), 128, 128, i));
        var r = QwtOnnx.quantize(f, CalibrationSources.ofList(Images.samples("x", imgs, 128, 128, "c")), QwtOnnx.Options.defaults().withCwac(dev.qwtonnx.cwac.CwacOptions.defaults().withMethod(dev.qwtonnx.cwac.CwacOptions.Method.NONE)), Progress.NONE, null);
        ModelIO.save(r.model(), Path.of("/tmp/ppocr-q.onnx"), null);
        try (var o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
            o.setOptimizedModelFilePath("/tmp/ppocr-q-opt.onnx");
            OrtEnvironment.getEnvironment().createSession(r.model().toBytes(), o).close();
        }
    }
}
