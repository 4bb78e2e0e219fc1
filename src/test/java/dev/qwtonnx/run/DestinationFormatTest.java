package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.target.Target;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which form `--format auto` writes for each target (decision 0019). */
class DestinationFormatTest {
    @Test
    void ortCpuTargetsWithEightBitActivationsGetIntegerOperatorsAndEveryOtherTargetQdq() {
        for (String t : List.of("cpu", "cpu-vnni", "arm64", "wasm")) {
            assertEquals(Destination.Format.QOPERATOR, Destination.Format.preferred(Target.named(t)), t);
            // No integer operator takes 16-bit activations: A16W8 stays QDQ on every target.
            assertEquals(Destination.Format.QDQ, Destination.Format.preferred(Target.named(t).withActivationBits(16)), t);
        }
        for (String t : List.of("tensorrt", "qnn", "xnnpack", "nnapi", "openvino")) {
            assertEquals(Destination.Format.QDQ, Destination.Format.preferred(Target.named(t)), t);
        }
    }
}
