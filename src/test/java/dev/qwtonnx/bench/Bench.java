package dev.qwtonnx.bench;

import dev.qwtonnx.run.QuantizeRun;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.testutil.EmbeddingFidelity;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.Images;
import dev.qwtonnx.testutil.MiniLm;
import dev.qwtonnx.verify.OrtKernels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;

/**
 * The ablation table on the real models: rows are configurations, columns fidelity, quantize time,
 * latency against float (measured side by side, interleaved) and nodes added by compensation.
 * Run with tools/bench.sh [minilm|ppocr|all]. Not a test: machines here are shared and noisy.
 */
public final class Bench {
    /** The gated default configuration's name (its latency is measured). */
    static final String GATED_DEFAULT = "cwac default (4 stages, " + CwacOptions.DEFAULT_SAMPLES + " samples) +cv gate";

    private Bench() {
    }

    record Config(String name, int weightBits, WeightRounding rounding, CwacOptions cwac, int floatBudget) {
        Config(String name, int weightBits, WeightRounding rounding, CwacOptions cwac) {
            this(name, weightBits, rounding, cwac, 0);
        }
    }

    static List<Config> configs(int... bits) {
        List<Config> out = new ArrayList<>();
        CwacOptions ungated = CwacOptions.defaults().withGate(CwacOptions.Gate.NONE);
        CwacOptions gated = CwacOptions.defaults().withGate(CwacOptions.Gate.CV);
        for (int b : bits) {
            String w = "W" + b + " ";
            out.add(new Config(w + "none", b, WeightRounding.NEAREST, ungated.withMethod(CwacOptions.Method.NONE)));
            out.add(new Config(w + "bias", b, WeightRounding.NEAREST, ungated.withMethod(CwacOptions.Method.BIAS)));
            out.add(new Config(w + "bias +cv gate", b, WeightRounding.NEAREST,
                    gated.withMethod(CwacOptions.Method.BIAS)));
            for (CwacOptions.Target t : CwacOptions.Target.values()) {
                for (CwacOptions.Schedule s : CwacOptions.Schedule.values()) {
                    // Sequential here is one stage per depth (the 6-argument options).
                    out.add(new Config(w + "cwac " + t.name().toLowerCase() + "/" + s.name().toLowerCase()
                            + (s == CwacOptions.Schedule.SEQUENTIAL ? " per depth" : ""), b,
                            WeightRounding.NEAREST, new CwacOptions(CwacOptions.Method.CWAC, t, s, 0.01, 2.0,
                                    CwacOptions.Gate.NONE)));
                }
            }
            out.add(new Config(w + GATED_DEFAULT, b, WeightRounding.NEAREST, gated));
            out.add(new Config(w + "cwac default +cv gate, ridge 0.1", b, WeightRounding.NEAREST,
                    gated.withRidge(0.1)));
            out.add(new Config(w + "gptq none", b, WeightRounding.GPTQ, ungated.withMethod(CwacOptions.Method.NONE)));
            out.add(new Config(w + "gptq + cwac default +cv gate", b, WeightRounding.GPTQ, gated));
            out.add(new Config(w + "gptq + cwac default", b, WeightRounding.GPTQ, ungated));
            out.add(new Config(w + "defaults + float budget 2", b, WeightRounding.AUTO, CwacOptions.defaults(), 2));
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        String which = args.length > 0 ? args[0] : "all";
        Path tmp = Files.createTempDirectory("qwt-bench");
        if (which.equals("all") || which.equals("minilm")) {
            List<String> sentences = Fortunes.load(2026);
            List<Sample> calib = MiniLm.samples(sentences.subList(0, 32), 128);
            List<Sample> eval = MiniLm.samples(sentences.subList(32, 132), 128);
            Model f = MiniLm.floatModel(tmp);
            Model peer = ModelIO.load(MiniLm.resourceFile("all-minilm-l6-v2-q.onnx", tmp));
            System.out.println("## all-MiniLM-L6-v2: 32 calibration / 100 held-out fortunes; sentence-embedding cosine vs float");
            EmbeddingFidelity pf = EmbeddingFidelity.measure(f, peer, eval);
            System.out.printf("| langchain4j dynamic int8 (peer) | %.4f | %.4f | - | %.2f | - |%n", pf.mean(), pf.min(),
                    latencyRatio(f, peer, eval));
            table(f, calib, eval, configs(8, 6, 4), true);
        }
        if (which.equals("all") || which.equals("ppocr")) {
            Path model = Path.of(".cache/models/ch_PP-OCRv4_det_infer.onnx");
            Images.DetectorData data = Images.detectorData(256, 12);
            System.out.println("## PP-OCRv4 detector: 16 calibration / 16 held-out images 256x256; IoU of map > 0.3 vs float");
            table(ModelIO.load(model), data.calib(), data.eval(),
                    configs(8, 6), false);
        }
    }

    private static void table(Model f, List<Sample> calib, List<Sample> eval, List<Config> configs,
            boolean embeddings) {
        System.out.println("| config | mean | min | quantize s | latency vs float | nodes added vs none | integer kernels |");
        System.out.println("|---|---|---|---|---|---|---|");
        Integer noneNodes = null;
        for (Config c : configs) {
            QuantizeRun.Options o = QuantizeRun.Options.defaults().withQuant(new QuantOptions(c.weightBits(), false, EnumSet.of(LayerKind.CONV),
                    c.rounding(), java.util.Set.of(), c.floatBudget())).withCwac(c.cwac());
            long t0 = System.nanoTime();
            QuantizeRun.Result r = QwtOnnx.quantize(f, CalibrationSources.ofList(calib), o, Progress.NONE, null);
            double secs = (System.nanoTime() - t0) / 1e9;
            double[] fid = embeddings ? emb(r, eval) : iou(r, eval);
            int nodes = r.model().graph().getNodeCount();
            if (c.cwac().method() == CwacOptions.Method.NONE && noneNodes == null) {
                noneNodes = nodes;
            }
            Map<String, Integer> ops = OrtKernels.optimizedOpCounts(r.model());
            boolean timeIt = c.name().endsWith("8 none") || c.name().endsWith("8 " + GATED_DEFAULT)
                    || c.floatBudget() > 0;
            System.out.printf("| %s | %.4f | %.4f | %.1f | %s | %d | %d |%n", c.name(), fid[0], fid[1], secs,
                    timeIt ? String.format("%.2f", latencyRatio(r.prepared(), r.model(), eval)) : "-",
                    nodes - (noneNodes == null ? nodes : noneNodes), OrtKernels.count(ops, OrtKernels.INTEGER_OPS));
        }
    }

    private static double[] emb(QuantizeRun.Result r, List<Sample> eval) {
        EmbeddingFidelity e = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
        return new double[] {e.mean(), e.min()};
    }

    static double[] iou(QuantizeRun.Result r, List<Sample> eval) {
        double sum = 0;
        double min = 1;
        try (OrtRunner a = new OrtRunner(r.prepared(), List.of()); OrtRunner b = new OrtRunner(r.model(), List.of())) {
            String out = r.prepared().graph().getOutput(0).getName();
            for (Sample s : eval) {
                float[] pa = a.run(s, List.of(out)).get(out).data();
                float[] pb = b.run(s, List.of(out)).get(out).data();
                long inter = 0;
                long union = 0;
                for (int i = 0; i < pa.length; i++) {
                    inter += pa[i] > 0.3f && pb[i] > 0.3f ? 1 : 0;
                    union += pa[i] > 0.3f || pb[i] > 0.3f ? 1 : 0;
                }
                double iou = union == 0 ? 1 : (double) inter / union;
                sum += iou;
                min = Math.min(min, iou);
            }
        }
        return new double[] {sum / eval.size(), min};
    }

    /** Median per-sample latency of {@code b} over {@code a}, runs interleaved so both see the same load. */
    static double latencyRatio(Model a, Model b, List<Sample> samples) {
        int rounds = 5;
        double[] ta = new double[rounds];
        double[] tb = new double[rounds];
        try (OrtRunner ra = new OrtRunner(a, List.of()); OrtRunner rb = new OrtRunner(b, List.of())) {
            String out = a.graph().getOutput(0).getName();
            for (Sample s : samples.subList(0, Math.min(4, samples.size()))) {
                ra.run(s, List.of(out));
                rb.run(s, List.of(out));
            }
            for (int k = 0; k < rounds; k++) {
                long t0 = System.nanoTime();
                for (Sample s : samples) {
                    ra.run(s, List.of(out));
                }
                long t1 = System.nanoTime();
                for (Sample s : samples) {
                    rb.run(s, List.of(out));
                }
                long t2 = System.nanoTime();
                ta[k] = t1 - t0;
                tb[k] = t2 - t1;
            }
        }
        Arrays.sort(ta);
        Arrays.sort(tb);
        return tb[rounds / 2] / ta[rounds / 2];
    }
}
