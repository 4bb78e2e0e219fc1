package dev.qwtonnx.verify;

import java.util.List;

/**
 * A report of made-up figures with every section filled in, for loading what writing a real one loads
 * (the template's directives, the charts, the serializers of every record) where no real report is at hand:
 * the run that writes the launcher's class archive renders it, so that the archive holds the report's
 * classes even when that run wrote no report.
 */
public final class ReportSample {
    private ReportSample() {
    }

    public static Report report() {
        Report.Summary s = new Report.Summary(2, 0.9, 1.0, 1.1);
        Report.Latency l = new Report.Latency(1.0, 0.9, 1.1, 0.8, 1.2);
        Report.Graph g = new Report.Graph(1, 1, List.of(new Report.OpCount("QLinearConv", 1)),
                List.of(new Report.Node("QLinearConv", "conv")));
        return new Report(Report.SCHEMA_VERSION, "qwt-onnx", new Report.ModelFile("float.onnx", 1000, 1),
                new Report.ModelFile("int8.onnx", 500, 3), new Report.DataSet("samples", 2),
                new Report.Provenance("qwt-onnx", "0", "", "samples", 2, List.of(new Report.Entry("k", "v"))),
                List.of(new Fidelity.OutputFidelity("y", 2, 0.99, 0.98, 20.0, 18.0, "0", 0.1, 0.01, 1.0, 1.0)),
                new Report.Layers(1, 1, List.of(new Report.LayerFidelity("conv", "Conv", "qdq", "conv", "name", 0.999,
                        20.0, 18.0, 25.0, 19.0, 24.0, false, "not fused", s, s, 2.0, 1.0)), List.of("other"), 1),
                new Report.Runtime("1", "all", g, g, List.of(new Report.Unfused("conv", "Conv", "no reason"))),
                new Report.Cost(1000, 500, 0.5, 2, null, 2, l, l, 1.0, 0),
                new Report.Compensation("cwac", 1, 2, 2.0, 1.0, 0, s,
                        new Report.Histogram(List.of(new Report.Bin(0.9, 1.0, 1), new Report.Bin(1.0, 1.1, 1)))),
                List.of(new Report.Decision("plan-layers", "Conv node 'x'", "kept in float")),
                new Report.Accuracy(List.of("SQNR >= 30 dB"), true, "31 dB", "2 samples",
                        List.of(new Report.Returned("conv", "20 dB", "31 dB")), List.of("warning: an example")),
                null);
    }
}
