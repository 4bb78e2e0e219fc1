package dev.qwtonnx.testutil;

import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.run.QuantizeRun;

/**
 * Default options that quantize every planned layer even where the cost model estimates int8 slower than
 * float ({@code --keep-slow-int8}). The tests' models are a few channels on a few pixels, where int8 never
 * pays, so by default they would come out float; the tests that exercise the int8 path ask for it.
 */
public final class Int8Anyway {
    private Int8Anyway() {}

    public static QuantOptions quant() {
        return QuantOptions.defaults().withKeepSlowInt8(true);
    }

    public static QuantizeRun.Options options() {
        return QuantizeRun.Options.defaults().withQuant(quant());
    }
}
