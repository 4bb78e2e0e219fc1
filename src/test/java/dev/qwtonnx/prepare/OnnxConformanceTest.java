package dev.qwtonnx.prepare;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.OrtException;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.testutil.OrtTestSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ONNX backend test models shipped by Debian's {@code libonnx-testdata} as a conformance suite
 * for {@link OpsetUpgrade}: every model below opset 13 that ONNX Runtime loads and runs on its
 * {@code test_data_set_0} inputs is upgraded to 13 (and, in a second run, every model below
 * {@link OpsetUpgrade#MAX_TARGET} to that) and run again on the same inputs. The two runs
 * must agree (same names, types, shapes; values within 1e-5 relative above 1, absolute below, NaN
 * where NaN). A model the upgrader refuses counts as refused with its reason; an upgraded model that
 * ORT rejects or that gives other outputs is a failure, and there must be none.
 *
 * <p>Skipped, visibly, when the package is absent ({@code apt-get install libonnx-testdata}).
 */
@Tag("conformance")
class OnnxConformanceTest {
    static final Path DATA = Path.of(System.getProperty("qwt.onnxTestData", "/usr/share/libonnx-testdata/data"));
    private static final double TOL = 1e-5;

    /** Why a model did not take part: the original itself cannot be run here. */
    private static final class NotRunnable extends Exception {
        NotRunnable(String why) {
            super(why);
        }
    }

    @ParameterizedTest(name = "to opset {0}")
    @ValueSource(longs = {OpsetUpgrade.TARGET, OpsetUpgrade.MAX_TARGET})
    void upgradedModelsMatchTheirOriginalsInOrt(long target) throws IOException {
        assumeTrue(Files.isDirectory(DATA), "libonnx-testdata is not installed (" + DATA + " missing)");
        List<Path> models;
        try (Stream<Path> s = Files.walk(DATA, 3)) {
            models = s.filter(p -> p.getFileName().toString().equals("model.onnx")).sorted().toList();
        }
        assumeTrue(!models.isEmpty(), "no model.onnx under " + DATA);
        int atTarget = 0;
        int matched = 0;
        Map<String, String> refused = new TreeMap<>();
        Map<String, String> notRunnable = new TreeMap<>();
        Map<String, String> failed = new TreeMap<>();
        for (Path file : models) {
            String id = DATA.relativize(file.getParent()).toString();
            Model in;
            try {
                in = ModelIO.load(file);
            } catch (QwtException e) {
                notRunnable.put(id, "load: " + e.getMessage());
                continue;
            }
            long opset = in.opsetVersion("");
            if (opset < 0 || opset >= target) {
                atTarget++;
                continue;
            }
            Map<String, HostTensor> before;
            Map<String, HostTensor> inputs;
            try {
                inputs = inputs(in, file.getParent().resolve("test_data_set_0"));
                before = run(in, inputs);
            } catch (NotRunnable e) {
                notRunnable.put(id, e.getMessage());
                continue;
            }
            Model out;
            try {
                out = new OpsetUpgrade(target).run(in).model();
                ModelChecker.check(out);
            } catch (QwtException e) {
                refused.put(id, "opset " + opset + ": " + e.getMessage());
                continue;
            }
            try {
                String diff = difference(before, run(out, inputs));
                if (diff == null) {
                    matched++;
                } else {
                    failed.put(id, "opset " + opset + ": " + diff);
                }
            } catch (NotRunnable e) {
                failed.put(id, "opset " + opset + ": upgraded model does not run: " + e.getMessage());
            }
        }
        StringBuilder report = new StringBuilder();
        report.append(String.format("libonnx-testdata conformance (%s): %d models, %d already at opset >= %d, "
                        + "%d upgraded and matched, %d refused, %d not runnable in ORT as shipped, %d FAILED%n",
                DATA, models.size(), atTarget, target, matched, refused.size(), notRunnable.size(),
                failed.size()));
        refused.forEach((k, v) -> report.append("  refused ").append(k).append(": ").append(v).append('\n'));
        notRunnable.forEach((k, v) -> report.append("  not runnable ").append(k).append(": ").append(oneLine(v))
                .append('\n'));
        failed.forEach((k, v) -> report.append("  FAILED ").append(k).append(": ").append(v).append('\n'));
        System.out.print(report);
        assertTrue(failed.isEmpty(), failed.size() + " upgraded models differ or do not run:\n" + failed);
        // The suite must actually exercise the upgrader, not pass by skipping everything: as many models as
        // this package version (Debian's libonnx-testdata) gives upgrade and match.
        int expected = target == OpsetUpgrade.TARGET ? 201 : 855;
        assertTrue(matched >= expected, "only " + matched + " models upgraded and matched, not " + expected);
        assertTrue(refused.size() <= 104, refused.size() + " models refused, more than 104");
        for (String why : refused.values()) {
            assertTrue(why.contains("cannot upgrade"), "refusal without a clear reason: " + why);
        }
    }

    private static String oneLine(String s) {
        String line = s.lines().findFirst().orElse("");
        return line.length() > 160 ? line.substring(0, 160) + "..." : line;
    }

    /** The inputs of a test-data set, matched to the graph inputs that are not initializers, in order. */
    private static Map<String, HostTensor> inputs(Model m, Path set) throws NotRunnable {
        Set<String> inits = new HashSet<>();
        m.graph().getInitializerList().forEach(t -> inits.add(t.getName()));
        List<String> names = new ArrayList<>();
        for (ValueInfoProto v : m.graph().getInputList()) {
            if (!inits.contains(v.getName())) {
                if (!v.getType().hasTensorType()) {
                    throw new NotRunnable("input " + v.getName() + " is not a tensor");
                }
                names.add(v.getName());
            }
        }
        Map<String, HostTensor> feed = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            Path f = set.resolve("input_" + i + ".pb");
            try {
                feed.put(names.get(i), Tensors.toHost(TensorProto.parseFrom(Files.readAllBytes(f))));
            } catch (IOException | QwtException e) {
                throw new NotRunnable("input " + f.getFileName() + ": " + e.getMessage());
            }
        }
        return feed;
    }

    private static Map<String, HostTensor> run(Model m, Map<String, HostTensor> inputs)
            throws NotRunnable {
        try {
            return OrtTestSupport.runOrThrow(m.toBytes(), inputs, 1);
        } catch (OrtException | QwtException e) {
            throw new NotRunnable("ORT: " + e.getMessage());
        } catch (RuntimeException e) {
            // Outputs the harness cannot read back (e.g. string tensors come back without a buffer).
            throw new NotRunnable("reading outputs: " + e);
        }
    }

    /** Null when both runs agree, else what differs. */
    static String difference(Map<String, HostTensor> expected, Map<String, HostTensor> actual) {
        if (!expected.keySet().equals(actual.keySet())) {
            return "outputs " + expected.keySet() + " became " + actual.keySet();
        }
        for (String name : expected.keySet()) {
            HostTensor e = expected.get(name);
            HostTensor a = actual.get(name);
            if (e.type() != a.type() || !Arrays.equals(e.shape(), a.shape())) {
                return name + ": " + e + " became " + a;
            }
            float[] x = e.toFloats();
            float[] y = a.toFloats();
            for (int i = 0; i < x.length; i++) {
                boolean same = Float.isNaN(x[i]) ? Float.isNaN(y[i])
                        : x[i] == y[i] || Math.abs((double) x[i] - y[i]) <= TOL * Math.max(1, Math.abs(x[i]));
                if (!same) {
                    return name + "[" + i + "]: " + x[i] + " became " + y[i];
                }
            }
        }
        return null;
    }
}
