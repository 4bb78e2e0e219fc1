package dev.qwtonnx.bench;

import dev.qwtonnx.run.QuantizeRun;
import com.sun.management.GarbageCollectionNotificationInfo;
import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.CalibOptions;
import dev.qwtonnx.calib.Progress;
import dev.qwtonnx.calib.RangeCalibrator;
import dev.qwtonnx.calib.RangeMethod;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.calib.data.Npz;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.calib.data.TextSource;
import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.quant.LayerKind;
import dev.qwtonnx.quant.LayerMatcher;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.quant.WeightRounding;
import dev.qwtonnx.testutil.EmbeddingFidelity;
import dev.qwtonnx.testutil.Fortunes;
import dev.qwtonnx.testutil.Images;
import dev.qwtonnx.testutil.MiniLm;
import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import javax.management.NotificationEmitter;
import javax.management.NotificationListener;
import javax.management.openmbean.CompositeData;

/**
 * The calibration benchmark of issue 3, printed as markdown tables in one run:
 * <ol>
 *   <li>peak heap and time to calibrate all-MiniLM-L6-v2's ranges on N1 and N2 sentences (default
 *       100 and 1000) per range method, and the heap ratio N2/N1 (streaming: goal ≤ 1.2);
 *   <li>end-to-end quantize time (MinMax + CWAC, 128 sentences) against ONNX Runtime's Python
 *       {@code quantize_static} on the same model and data (tools/ort_quantize_static.py), where
 *       python3 with onnxruntime exists;
 *   <li>the CWAC share: plain PTQ against parallel CWAC, the default schedule and one stage per
 *       depth (the compared runs take turns, repeated; medians of the per-round ratios);
 *   <li>MiniLM fidelity per range method (32 calibration / 100 held-out fortunes);
 *   <li>with "ppocr" or "all": PP-OCRv4 detector fidelity per range method.
 * </ol>
 * Run with {@code tools/bench-calib.sh [all|heap|e2e|fidelity|ppocr|samples|samples-w6|stages] [N1,N2]
 * [end-to-end sentences] [rounds]}. Not a test: this machine is shared, so the figures are indicative. Peak heap is reported two ways: the sum of the heap
 * pools' peak usage (includes garbage not yet collected, so it follows the GC's sizing) and the
 * largest heap in use right after a collection (the live set: what streaming must keep flat).
 */
public final class CalibrationBench {
    private CalibrationBench() {
    }

    public static void main(String[] args) throws Exception {
        String which = args.length > 0 ? args[0] : "all";
        int[] sizes = args.length > 1 ? java.util.Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray()
                : new int[] {100, 1000};
        int endToEnd = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int repeats = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        Path tmp = Files.createTempDirectory("qwt-calib-bench");
        List<String> sentences = Fortunes.load(2026);
        Path modelFile = MiniLm.resourceFile("all-minilm-l6-v2.onnx", tmp);
        // "heap" alone: tools/bench-calib.sh runs it in a JVM of its own, with a fixed young generation.
        if (which.equals("all") || which.equals("heap")) {
            heap(tmp, modelFile, sentences, sizes);
        }
        if (which.equals("all") || which.equals("rest") || which.equals("e2e")) {
            endToEnd(tmp, modelFile, MiniLm.samples(sentences.subList(0, endToEnd), 128), repeats);
        }
        if (which.equals("all") || which.equals("rest") || which.equals("fidelity")) {
            fidelity(modelFile, sentences);
        }
        if (which.equals("samples")) {
            cwacSamples(modelFile, sentences, endToEnd, QuantOptions.defaults(), new int[] {0, 64, 32, 24, 16});
        }
        if (which.equals("samples-w6")) {
            cwacSamples(modelFile, sentences, endToEnd,
                    new QuantOptions(6, false, EnumSet.of(LayerKind.CONV), WeightRounding.NEAREST), new int[] {0, 16, 12, 8});
        }
        if (which.equals("stages")) {
            stages(modelFile, sentences);
        }
        if (which.equals("all") || which.equals("rest") || which.equals("ppocr")) {
            ppocr();
        }
    }

    /** Peak heap figures of one measured run, in bytes. */
    record Heap(long poolPeaks, long liveAfterGc) {
    }

    /** Watches the heap while a task runs: pool peaks, and the heap left after each collection. */
    static final class HeapWatch implements AutoCloseable {
        private final AtomicLong maxAfterGc = new AtomicLong();
        private final Set<String> heapPools;
        private final NotificationListener listener;

        HeapWatch() {
            System.gc();
            heapPools = ManagementFactory.getMemoryPoolMXBeans().stream().filter(p -> p.getType() == MemoryType.HEAP)
                    .map(MemoryPoolMXBean::getName).collect(Collectors.toSet());
            for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                p.resetPeakUsage();
            }
            maxAfterGc.set(ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
            listener = (n, handback) -> {
                if (n.getType().equals(GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
                    GarbageCollectionNotificationInfo info = GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
                    long used = 0;
                    for (var e : info.getGcInfo().getMemoryUsageAfterGc().entrySet()) {
                        if (heapPools.contains(e.getKey())) {
                            used += e.getValue().getUsed();
                        }
                    }
                    maxAfterGc.accumulateAndGet(used, Math::max);
                }
            };
            for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
                ((NotificationEmitter) gc).addNotificationListener(listener, null, null);
            }
        }

        Heap stop() {
            long peaks = 0;
            for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                if (p.getType() == MemoryType.HEAP) {
                    MemoryUsage u = p.getPeakUsage();
                    peaks += u == null ? 0 : u.getUsed();
                }
            }
            // One more collection at the end: the live set the run leaves (its statistics).
            System.gc();
            return new Heap(peaks, maxAfterGc.get());
        }

        @Override
        public void close() throws Exception {
            for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
                ((NotificationEmitter) gc).removeNotificationListener(listener);
            }
        }
    }

    static String mb(long bytes) {
        return String.format("%.0f", bytes / 1048576.0);
    }

    /**
     * Section 1: peak heap and time of range calibration per method, on each number of sentences;
     * with the model as loaded (weights memory-mapped, off the heap), and held on the heap as
     * models were before mapping. The live heap of the first is 10–25 MB, of which one batch's
     * activations in flight when a collection runs is up to half: its 1000/100 ratio swings between
     * runs (0.74–1.88 measured); the second adds the weights' constant ~100 MB, against which what
     * calibration keeps compares as it did before.
     */
    static void heap(Path tmp, Path modelFile, List<String> sentences, int[] sizes) throws Exception {
        int most = java.util.Arrays.stream(sizes).max().orElse(100);
        Path text = tmp.resolve("sentences.txt");
        Files.write(text, sentences.subList(0, Math.min(most, sentences.size())), StandardCharsets.UTF_8);
        Path tokenizer = MiniLm.resourceFile("all-minilm-l6-v2-tokenizer.json", tmp);
        List<String> ratios = new ArrayList<>();
        for (boolean onHeap : new boolean[] {false, true}) {
            Model f = onHeap ? ModelIO.fromBytes(Files.readAllBytes(modelFile), modelFile.toString())
                    : ModelIO.load(modelFile);
            Model prepared = QwtOnnx.prepare(f, false, null);
            List<String> tensors = new ArrayList<>(LayerMatcher.match(prepared, QuantOptions.defaults()).tensorsToCalibrate());
            String weights = onHeap ? "weights on the heap" : "weights mapped (as loaded)";
            System.out.println("## 1. Calibrating all-MiniLM-L6-v2 ranges (" + tensors.size()
                    + " tensors) on fortunes, streamed from a text file with its tokenizer.json; " + weights);
            System.out.println("| method | sentences | seconds | heap pool peaks MB | live heap after GC MB |");
            System.out.println("|---|---|---|---|---|");
            for (RangeMethod method : RangeMethod.values()) {
                Heap first = null;
                for (int n : sizes) {
                    CalibOptions o = CalibOptions.defaults().withMethod(method);
                    long t0;
                    long t1;
                    Heap heap;
                    try (HeapWatch w = new HeapWatch();
                            TextSource src = TextSource.open(text, tokenizer, 128, InputSpecs.of(prepared.graph()))) {
                        t0 = System.nanoTime();
                        new RangeCalibrator(t -> o.observer(method), o.batch()).calibrate(prepared, tensors,
                                CalibrationSources.limit(src, n, null), Progress.NONE);
                        t1 = System.nanoTime();
                        heap = w.stop();
                    }
                    first = first == null ? heap : first;
                    System.out.printf("| %s | %d | %.1f | %s | %s |%n", method.label(), n, (t1 - t0) / 1e9,
                            mb(heap.poolPeaks()), mb(heap.liveAfterGc()));
                    if (heap != first) {
                        ratios.add(String.format("%s, %s: pool peaks %.2f, live %.2f", weights, method.label(),
                                (double) heap.poolPeaks() / first.poolPeaks(),
                                (double) heap.liveAfterGc() / first.liveAfterGc()));
                    }
                }
            }
            System.out.println();
        }
        System.out.println("Peak-heap ratio " + sizes[sizes.length - 1] + " / " + sizes[0] + " (goal <= 1.2): "
                + String.join("; ", ratios));
    }

    /** Section 4: MiniLM fidelity per range method, with the default compensation. */
    static void fidelity(Path modelFile, List<String> sentences) throws Exception {
        Model f = ModelIO.load(modelFile);
        System.out.println();
        System.out.println("## 4. MiniLM fidelity per range method: 32 calibration / 100 held-out fortunes, CWAC default;"
                + " cosine of mean-pooled embeddings vs float");
        List<Sample> calib = MiniLm.samples(sentences.subList(0, 32), 128);
        List<Sample> eval = MiniLm.samples(sentences.subList(32, 132), 128);
        System.out.println("| method | cwac mean | cwac min | no-compensation mean | no-compensation min |");
        System.out.println("|---|---|---|---|---|");
        for (RangeMethod method : RangeMethod.values()) {
            QuantizeRun.Result r = QwtOnnx.quantize(f, CalibrationSources.ofList(calib),
                    QuantizeRun.Options.defaults().withCalib(CalibOptions.defaults().withMethod(method)), Progress.NONE, null);
            EmbeddingFidelity fid = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
            EmbeddingFidelity raw = EmbeddingFidelity.measure(r.prepared(), r.uncompensated(), eval);
            System.out.printf("| %s | %.4f | %.4f | %.4f | %.4f |%n", method.label(), fid.mean(), fid.min(), raw.mean(),
                    raw.min());
        }
    }

    /** Calibration sets the samples section repeats on: one sentence is too few to judge a minimum by. */
    static final int SAMPLE_SETS = 4;
    /** Held-out sentences of the samples section, after all calibration sets. */
    static final int SAMPLE_HELD_OUT = 300;

    /**
     * CWAC fitted on a capped number of the calibration samples ({@link CwacOptions#samples()}):
     * MiniLM fidelity on {@value #SAMPLE_SETS} disjoint sets of {@code n} calibration fortunes, each
     * measured on the same {@value #SAMPLE_HELD_OUT} held-out ones, parallel and default schedules,
     * beside plain PTQ. The worst sentence's cosine moves by ±0.003 with changes of the fits as
     * small as 10⁻⁴ (measured), so one set cannot rank caps: the table gives the averages over the
     * sets and each set's minimum.
     */
    static void cwacSamples(Path modelFile, List<String> sentences, int n, QuantOptions quant, int[] caps)
            throws Exception {
        Model f = ModelIO.load(modelFile);
        List<Sample> eval = MiniLm.samples(sentences.subList(SAMPLE_SETS * n, SAMPLE_SETS * n + SAMPLE_HELD_OUT), 128);
        System.out.println("## CWAC samples: MiniLM W" + quant.weightBits() + " (" + quant.rounding().name().toLowerCase()
                + " rounding), " + SAMPLE_SETS + " sets of " + n + " calibration / " + SAMPLE_HELD_OUT
                + " held-out fortunes; cosine vs float, averaged over the sets");
        System.out.println("| schedule | cwac samples | mean | min (average) | min per set | compensate s (average) |");
        System.out.println("|---|---|---|---|---|---|");
        CwacOptions d = CwacOptions.defaults();
        List<CwacOptions> configs = new ArrayList<>();
        configs.add(d.withMethod(CwacOptions.Method.NONE));
        for (CwacOptions c : List.of(d.withSchedule(CwacOptions.Schedule.PARALLEL, 0), d)) {
            for (int k : caps) {
                configs.add(c.withSamples(k));
            }
        }
        for (CwacOptions c : configs) {
            double mean = 0;
            double min = 0;
            double seconds = 0;
            StringBuilder mins = new StringBuilder();
            for (int set = 0; set < SAMPLE_SETS; set++) {
                List<Sample> calib = MiniLm.samples(sentences.subList(set * n, (set + 1) * n), 128);
                QuantizeRun.Result r = QwtOnnx.quantize(f, CalibrationSources.ofList(calib),
                        QuantizeRun.Options.defaults().withQuant(quant).withCwac(c), Progress.NONE, null);
                EmbeddingFidelity fid = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
                mean += fid.mean() / SAMPLE_SETS;
                min += fid.min() / SAMPLE_SETS;
                seconds += r.compensateTime().toNanos() / 1e9 / SAMPLE_SETS;
                mins.append(set == 0 ? "" : " ").append(String.format("%.4f", fid.min()));
            }
            boolean plain = c.method() == CwacOptions.Method.NONE;
            System.out.printf("| %s | %s | %.5f | %.4f | %s | %.2f |%n", plain ? "plain PTQ" : c.schedule(),
                    plain ? "-" : c.samples() == 0 ? "all" : c.samples(), mean, min, mins, seconds);
        }
    }

    /**
     * The sequential schedule's number of stages: MiniLM fidelity (32 calibration / 100 held-out
     * fortunes) and PP-OCRv4 detector IoU (16 / 16 images) for one stage per depth, 12, 8, 4 and 2
     * stages, and the parallel schedule (one stage).
     */
    static void stages(Path modelFile, List<String> sentences) throws Exception {
        Model minilm = ModelIO.load(modelFile);
        List<Sample> calib = MiniLm.samples(sentences.subList(0, 32), 128);
        List<Sample> eval = MiniLm.samples(sentences.subList(32, 132), 128);
        Model det = Files.exists(DETECTOR) ? ModelIO.load(DETECTOR) : null;
        Images.DetectorData images = det == null ? null : Images.detectorData(256, 12);
        System.out.println("## Stages: MiniLM cosine vs float (32 calibration / 100 held-out fortunes), PP-OCRv4 detector"
                + " IoU of map > 0.3 (16 / 16 images 256x256)" + (det == null ? "; detector not fetched" : ""));
        System.out.println("| schedule | MiniLM mean | MiniLM min | detector mean IoU | detector min IoU |");
        System.out.println("|---|---|---|---|---|");
        CwacOptions d = CwacOptions.defaults();
        List<CwacOptions> configs = new ArrayList<>();
        for (int k : new int[] {0, 12, 8, 4, 2}) {
            configs.add(d.withSchedule(CwacOptions.Schedule.SEQUENTIAL, k));
        }
        configs.add(d.withSchedule(CwacOptions.Schedule.PARALLEL, 0));
        for (CwacOptions c : configs) {
            QuantizeRun.Options o = QuantizeRun.Options.defaults().withCwac(c);
            QuantizeRun.Result r = QwtOnnx.quantize(minilm, CalibrationSources.ofList(calib), o, Progress.NONE, null);
            EmbeddingFidelity fid = EmbeddingFidelity.measure(r.prepared(), r.model(), eval);
            double[] iou = det == null ? new double[] {Double.NaN, Double.NaN}
                    : Bench.iou(QwtOnnx.quantize(det, CalibrationSources.ofList(images.calib()), o, Progress.NONE, null),
                            images.eval());
            String name = c.schedule() == CwacOptions.Schedule.PARALLEL ? "parallel"
                    : c.stages() == 0 ? "sequential, one stage per depth" : "sequential, at most " + c.stages() + " stages";
            System.out.printf("| %s | %.4f | %.4f | %.4f | %.4f |%n", name, fid.mean(), fid.min(), iou[0], iou[1]);
        }
    }

    /** One configuration of the end-to-end comparison. */
    record EndToEnd(String name, CwacOptions cwac) {
    }

    /**
     * Sections 2 and 3: end-to-end quantize time (model load included) of plain PTQ, parallel
     * CWAC, the default schedule and one stage per depth, and of ONNX Runtime's Python
     * quantize_static, run in turn {@code repeats} times so that all see the same load; ratios are
     * the medians of the per-round ratios.
     */
    static void endToEnd(Path tmp, Path modelFile, List<Sample> samples, int repeats) throws Exception {
        CwacOptions defaults = CwacOptions.defaults();
        List<EndToEnd> runs = List.of(
                new EndToEnd("plain PTQ (no CWAC)", defaults.withMethod(CwacOptions.Method.NONE)),
                new EndToEnd("CWAC parallel", defaults.withSchedule(CwacOptions.Schedule.PARALLEL, 0)),
                new EndToEnd("CWAC default (" + defaults.schedule().name().toLowerCase() + ", "
                        + (defaults.stages() == 0 ? "one stage per depth" : "at most " + defaults.stages() + " stages") + ")",
                        defaults),
                new EndToEnd("CWAC sequential, one stage per depth", defaults.withSchedule(CwacOptions.Schedule.SEQUENTIAL, 0)));
        Path npz = ortAvailable() ? writeNpz(tmp, samples) : null;
        double[][] total = new double[runs.size()][repeats];
        double[][] compensate = new double[runs.size()][repeats];
        // Process CPU time (ORT's native threads included): steadier than wall time on a shared machine.
        double[][] cpu = new double[runs.size()][repeats];
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        double[] ort = new double[repeats];
        // One untimed run first: class loading and ORT's first session are not what is compared.
        QwtOnnx.quantize(ModelIO.load(modelFile), CalibrationSources.ofList(samples.subList(0, 4)),
                QuantizeRun.Options.defaults(), Progress.NONE, null);
        for (int r = 0; r < repeats; r++) {
            for (int i = 0; i < runs.size(); i++) {
                long c0 = os.getProcessCpuTime();
                long t0 = System.nanoTime();
                QuantizeRun.Result res = QwtOnnx.quantize(ModelIO.load(modelFile), CalibrationSources.ofList(samples),
                        QuantizeRun.Options.defaults().withCwac(runs.get(i).cwac()), Progress.NONE, null);
                total[i][r] = (System.nanoTime() - t0) / 1e9;
                cpu[i][r] = (os.getProcessCpuTime() - c0) / 1e9;
                compensate[i][r] = res.compensateTime().toNanos() / 1e9;
            }
            ort[r] = npz == null ? Double.NaN : ortPython(tmp, modelFile, npz);
        }
        System.out.println();
        System.out.println("## 2-3. End to end on " + samples.size() + " sentences (MinMax; model load included), "
                + repeats + " rounds run in turn; medians");
        System.out.println("| run | total s | compensate s | x plain PTQ | CPU s | CPU x plain PTQ | x ONNX Runtime quantize_static |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (int i = 0; i < runs.size(); i++) {
            System.out.printf("| qwt-onnx %s | %.2f | %.2f | %s | %.2f | %s | %s |%n", runs.get(i).name(), median(total[i]),
                    median(compensate[i]), i == 0 ? "1" : String.format("%.2f", medianRatio(total[i], total[0])),
                    median(cpu[i]), i == 0 ? "1" : String.format("%.2f", medianRatio(cpu[i], cpu[0])),
                    npz == null ? "-" : String.format("%.2f", medianRatio(total[i], ort)));
        }
        System.out.println("| ONNX Runtime quantize_static (Python, MinMax, QDQ per-channel) | "
                + (npz == null ? "not available (python3 with onnxruntime not found)" : String.format("%.2f", median(ort)))
                + " | - | - | - | - | 1 |");
        System.out.println();
        System.out.println("Per round, seconds: " + java.util.stream.IntStream.range(0, repeats).mapToObj(r -> {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < runs.size(); i++) {
                b.append(String.format("%.2f ", total[i][r]));
            }
            return b.append(String.format("ort %.2f]", ort[r])).toString();
        }).collect(Collectors.joining(" ")) + " (columns as the table's rows)");
        System.out.printf("Goals: default end to end <= 0.7x ONNX Runtime: %s; parallel CWAC <= 1.3x plain PTQ: %.2fx"
                + " (CPU time %.2fx)%n", npz == null ? "not available" : String.format("%.2fx", medianRatio(total[2], ort)),
                medianRatio(total[1], total[0]), medianRatio(cpu[1], cpu[0]));
    }

    static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static double medianRatio(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = a[i] / b[i];
        }
        return median(r);
    }

    static boolean ortAvailable() throws IOException, InterruptedException {
        return Files.exists(Path.of("tools/ort_quantize_static.py"))
                && run(List.of("python3", "-c", "import onnxruntime.quantization")) != null;
    }

    static Path writeNpz(Path tmp, List<Sample> samples) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("npz"));
        int i = 0;
        for (Sample s : samples) {
            Npz.write(dir.resolve(String.format("%04d.npz", i++)), s.inputs());
        }
        return dir;
    }

    /** Seconds tools/ort_quantize_static.py reports for quantize_static on the samples in {@code npz}, or NaN. */
    static double ortPython(Path tmp, Path model, Path npz) throws IOException, InterruptedException {
        String out = run(List.of("python3", "tools/ort_quantize_static.py", model.toString(),
                tmp.resolve("ort-int8.onnx").toString(), npz.toString()));
        if (out == null) {
            return Double.NaN;
        }
        String line = out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElse("");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"seconds\": ([0-9.]+)").matcher(line);
        return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return p.waitFor() == 0 ? out : null;
    }

    /** The PP-OCRv4 text detector, where tools/fetch-models.sh put it. */
    static final Path DETECTOR = Path.of(".cache/models/ch_PP-OCRv4_det_infer.onnx");

    static void ppocr() throws Exception {
        if (!Files.exists(DETECTOR)) {
            System.out.println("## 5. PP-OCRv4: not available (tools/fetch-models.sh)");
            return;
        }
        Images.DetectorData data = Images.detectorData(256, 12);
        List<Sample> calib = data.calib();
        List<Sample> eval = data.eval();
        Model f = ModelIO.load(DETECTOR);
        System.out.println();
        System.out.println("## 5. PP-OCRv4 detector fidelity per range method: 16 calibration / 16 held-out images 256x256,"
                + " CWAC default; IoU of probability map > 0.3 vs float");
        System.out.println("| method | mean IoU | min IoU | quantize s |");
        System.out.println("|---|---|---|---|");
        for (RangeMethod method : RangeMethod.values()) {
            long t0 = System.nanoTime();
            QuantizeRun.Result r = QwtOnnx.quantize(f, CalibrationSources.ofList(calib),
                    QuantizeRun.Options.defaults().withCalib(CalibOptions.defaults().withMethod(method)), Progress.NONE, null);
            double secs = (System.nanoTime() - t0) / 1e9;
            double[] iou = Bench.iou(r, eval);
            System.out.printf("| %s | %.4f | %.4f | %.1f |%n", method.label(), iou[0], iou[1], secs);
        }
    }
}
