package dev.qwtonnx.cli;

import dev.qwtonnx.model.ExternalData;
import picocli.CommandLine.Option;

/** Where the output's tensors go: in the .onnx file or in a data file next to it (quantize, compensate). */
final class ExternalDataMixin {
    @Option(names = "--external-data", defaultValue = "auto", paramLabel = "M",
            description = "Store tensors in OUT.data next to OUT: auto (only when the model would exceed protobuf's "
                    + "2 GB limit), always, never (a model over 2 GB is refused) (default: ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--external-data-threshold", defaultValue = "1024", paramLabel = "BYTES",
            description = "Tensors of at least BYTES go to the data file when one is written (default: ${DEFAULT-VALUE}).")
    long threshold;

    ExternalData.Policy policy() {
        return new ExternalData.Policy(ExternalData.Policy.mode(mode), threshold);
    }
}
