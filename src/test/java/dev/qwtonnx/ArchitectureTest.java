package dev.qwtonnx;

import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package layers of the main code, top to bottom: a package may import only the packages
 * below it, so that a reader can understand each layer knowing only the ones beneath, and a change
 * low down cannot be undone by a call back from above. The root package (QwtException, Version)
 * sits below every layer; the generated ONNX protobuf classes ({@code onnx}) are the lowest layer.
 */
class ArchitectureTest {
    /** The main classes only: tests may reach across layers to set up what they check. */
    private static JavaClasses main;

    @BeforeAll
    static void importMainClasses() {
        main = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.qwtonnx");
    }

    static final ArchRule LAYERS = layeredArchitecture().consideringOnlyDependenciesInLayers()
            .layer("cli").definedBy("dev.qwtonnx.cli..")
            .layer("api").definedBy("dev.qwtonnx.api..")
            .layer("run").definedBy("dev.qwtonnx.run..")
            .layer("verify").definedBy("dev.qwtonnx.verify..")
            .layer("cwac").definedBy("dev.qwtonnx.cwac..")
            .layer("quant").definedBy("dev.qwtonnx.quant..")
            .layer("calib").definedBy("dev.qwtonnx.calib..")
            .layer("prepare").definedBy("dev.qwtonnx.prepare..")
            .layer("target").definedBy("dev.qwtonnx.target..")
            .layer("pass").definedBy("dev.qwtonnx.pass..")
            .layer("ort").definedBy("dev.qwtonnx.ort..")
            .layer("model").definedBy("dev.qwtonnx.model..")
            .layer("onnx").definedBy("dev.qwtonnx.onnx..")
            .layer("root").definedBy("dev.qwtonnx")

            .whereLayer("cli").mayNotBeAccessedByAnyLayer()
            .whereLayer("api").mayOnlyBeAccessedByLayers("cli")
            .whereLayer("run").mayOnlyBeAccessedByLayers("cli", "api")
            .whereLayer("verify").mayOnlyBeAccessedByLayers("cli", "api", "run")
            .whereLayer("cwac").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify")
            .whereLayer("quant").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac")
            .whereLayer("calib").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant")
            .whereLayer("prepare").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant",
                    "calib")
            .whereLayer("target").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant", "calib",
                    "prepare")
            .whereLayer("pass").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant", "calib",
                    "prepare", "target")
            .whereLayer("ort").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant", "calib",
                    "prepare", "target", "pass")
            .whereLayer("model").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant",
                    "calib", "prepare", "target", "pass", "ort")
            .whereLayer("onnx").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant", "calib",
                    "prepare", "target", "pass", "ort", "model")
            .whereLayer("root").mayOnlyBeAccessedByLayers("cli", "api", "run", "verify", "cwac", "quant", "calib",
                    "prepare", "target", "pass", "ort", "model", "onnx");

    /** A subpackage (calib.data) belongs to its package's slice. */
    static final ArchRule NO_CYCLES = slices().matching("dev.qwtonnx.(*)..").should().beFreeOfCycles();

    @Test
    void eachPackageImportsOnlyTheLayersBelowIt() {
        LAYERS.check(main);
    }

    @Test
    void packagesImportEachOtherWithoutCycles() {
        NO_CYCLES.check(main);
    }
}
