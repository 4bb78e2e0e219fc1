package dev.qwtonnx.verify.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.qwtonnx.api.QwtOnnx;
import dev.qwtonnx.calib.data.CalibrationSource;
import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.InputSpecs;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import dev.qwtonnx.ort.OrtKernels;
import dev.qwtonnx.testutil.Int8Anyway;
import dev.qwtonnx.testutil.TestModels;
import dev.qwtonnx.verify.Fidelity;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The bundled example, quantized with the defaults in the form the command line writes for the cpu
 * target, run on every runtime this machine has: its outputs there are as faithful to the float model
 * as on this CPU, and ORT (or onnxruntime-web) runs its layers as integer kernels there too. Tagged {@code model} as well, so the fast set leaves it out.
 */
@Tag("runtime")
@Tag("model")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RuntimeCheckTest {
    /** Emulation is slow: a few held-out samples. */
    private static final int CALIBRATION = 16;
    private static final int CHECKED = 4;

    private Model floatModel;
    private Model quantModel;
    private CalibrationSource heldOut;
    private RuntimeCheck.Result nativeRun;
    /** Each platform's run, shared by the tests that read it (emulated runs take many seconds). */
    private final Map<Platform, RuntimeCheck.Result> runs = new EnumMap<>(Platform.class);

    @BeforeAll
    void quantizeAndRunHere() {
        floatModel = ModelIO.load(Path.of("testdata/example/cnn.onnx"));
        CalibrationSource all = CalibrationSources.open(Path.of("testdata/example/calib"),
                InputSpecs.of(floatModel.graph()));
        // The form the command line writes for the cpu target: explicit integer operators (QLinearConv, QGemm).
        quantModel = QwtOnnx.toQOperator(QwtOnnx.quantize(floatModel, CalibrationSources.limit(all, CALIBRATION, null))
                .options(Int8Anyway.options()).run().model(), false, null);
        heldOut = CalibrationSources.limit(CalibrationSources.skip(all, CALIBRATION), CHECKED, null);
        nativeRun = RuntimeCheck.check(floatModel, quantModel, heldOut, Platform.NATIVE);
    }

    @Test
    void theNativeRunMatchesTheInProcessFidelityAndKernels() {
        List<Fidelity.OutputFidelity> here = Fidelity.measure(floatModel, quantModel, heldOut,
                dev.qwtonnx.calib.Progress.NONE);
        assertEquals(here.size(), nativeRun.fidelity().size());
        for (int i = 0; i < here.size(); i++) {
            assertEquals(here.get(i).meanSqnrDb(), nativeRun.fidelity().get(i).meanSqnrDb(), 0.01);
            assertEquals(here.get(i).minCosine(), nativeRun.fidelity().get(i).minCosine(), 1e-5);
        }
        int integer = OrtKernels.count(OrtKernels.optimizedOpCounts(quantModel), OrtKernels.INTEGER_OPS);
        assertTrue(integer > 0, "ORT runs integer kernels here");
        assertEquals(integer, nativeRun.integerKernels());
        assertTrue(nativeRun.floatLatency().medianMs() > 0 && nativeRun.quantLatency().medianMs() > 0);
    }

    @ParameterizedTest
    @EnumSource(value = Platform.class, names = {"X86_AVX2", "ARM64_DOTPROD", "ARM64_NO_DOTPROD", "WASM"})
    void theRuntimeRunsTheFloatModelAlikeAndTheQuantizedOneOnIntegerKernels(Platform platform) {
        RuntimeCheck.Result r = checkOn(platform);
        for (Fidelity.OutputFidelity f : r.floatAgreement()) {
            assertEquals(CHECKED, f.samples());
            // The float model computes the same function there; float kernels differ only in rounding.
            assertTrue(f.minCosine() > 0.99999, f.toString());
            assertTrue(f.minSqnrDb() > 80, f.toString());
        }
        assertNotNull(r.kernels(), r.kernelsWhy());
        assertTrue(r.integerKernels() > 0, "integer kernels on " + platform + ": " + r.kernels());
        if (platform != Platform.WASM) {
            assertEquals(nativeRun.integerKernels(), r.integerKernels(), "ORT fuses the same layers: " + r.kernels());
        }
        assertTrue(r.floatLatency().medianMs() > 0 && r.quantLatency().medianMs() > 0);
    }

    @ParameterizedTest
    @EnumSource(value = Platform.class, names = {"ARM64_DOTPROD", "ARM64_NO_DOTPROD", "WASM"})
    void theQuantizedModelIsAsFaithfulOnTheRuntimeAsHere(Platform platform) {
        assertAsFaithfulAsHere(checkOn(platform));
    }

    @Test
    void theQuantizedModelIsAsFaithfulOnAvx2AsHere() {
        assertAsFaithfulAsHere(checkOn(Platform.X86_AVX2));
    }

    /**
     * MatMuls with a bias as the command line writes them for the cpu target: com.microsoft
     * MatMulIntegerToFloat taking the bias. Each runtime has the operator and computes what this machine does.
     */
    @ParameterizedTest
    @EnumSource(value = Platform.class, names = {"X86_AVX2", "ARM64_DOTPROD", "WASM"})
    void matMulIntegerToFloatWithItsBiasRunsAlikeOnTheRuntime(Platform platform) {
        ForeignRuntime.Availability a = ForeignRuntime.of(platform).availability();
        assumeTrue(a.available(), platform.description() + " is not available here: " + a.why());
        Model mlp = TestModels.mlp(5, 6);
        CalibrationSource xs = TestModels.gaussian("x", 6, 12, new long[] {1, 6, 32});
        Model q = QwtOnnx.toQOperator(QwtOnnx.quantize(mlp, CalibrationSources.limit(xs, 8, null))
                .options(Int8Anyway.options()).run().model(), false, null);
        List<Integer> inputs = q.graph().getNodeList().stream().filter(n -> n.getOpType().equals("MatMulIntegerToFloat"))
                .map(n -> n.getInputCount()).sorted().toList();
        assertEquals(List.of(6, 7, 7), inputs, "three MatMuls, two of them taking their bias");
        CalibrationSource held = CalibrationSources.skip(xs, 8);
        RuntimeCheck.Result here = RuntimeCheck.check(mlp, q, held, Platform.NATIVE);
        RuntimeCheck.Result there = RuntimeCheck.check(mlp, q, held, platform);
        there.lines().forEach(System.out::println);
        assertNotNull(there.kernels(), there.kernelsWhy());
        assertEquals(3, there.kernels().getOrDefault("MatMulIntegerToFloat", 0), there.kernels().toString());
        for (int i = 0; i < here.fidelity().size(); i++) {
            assertTrue(here.fidelity().get(i).meanSqnrDb() > 20, here.fidelity().get(i).toString());
            assertEquals(here.fidelity().get(i).meanSqnrDb(), there.fidelity().get(i).meanSqnrDb(), 0.5);
        }
    }

    private RuntimeCheck.Result checkOn(Platform platform) {
        ForeignRuntime.Availability a = ForeignRuntime.of(platform).availability();
        assumeTrue(a.available(), platform.description() + " is not available here: " + a.why());
        return runs.computeIfAbsent(platform, p -> {
            RuntimeCheck.Result r = RuntimeCheck.check(floatModel, quantModel, heldOut, p);
            r.lines().forEach(System.out::println);
            return r;
        });
    }

    private void assertAsFaithfulAsHere(RuntimeCheck.Result r) {
        for (int i = 0; i < r.fidelity().size(); i++) {
            Fidelity.OutputFidelity there = r.fidelity().get(i);
            Fidelity.OutputFidelity here = nativeRun.fidelity().get(i);
            assertEquals(CHECKED, there.samples());
            // The same integer arithmetic; only the float rounding of requantization and of the
            // float layers around it differs between platforms' kernels.
            String both = r.platform() + " " + there + " vs here " + here;
            assertEquals(here.meanSqnrDb(), there.meanSqnrDb(), 0.5, both);
            assertEquals(here.minCosine(), there.minCosine(), 1e-3, both);
        }
    }
}
