package dev.qwtonnx.run;

import java.util.List;

/** A stage of the quantize run: configured by the run's options alone. */
abstract class QuantizeStage extends BaseStage {
    protected final QuantizeRun.Options options;

    QuantizeStage(String name, QuantizeRun.Options options, List<Fact<?>> consumes, List<Fact<?>> produces) {
        super(name, consumes, produces);
        this.options = options;
    }
}
