package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.DESTINATION;
import static dev.qwtonnx.run.QuantizeRun.MODEL;
import static dev.qwtonnx.run.QuantizeRun.OUTPUT;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelChecker;
import dev.qwtonnx.pass.Pipeline;
import dev.qwtonnx.quant.QOperatorLowering;
import java.util.List;

/** The model in the destination's format: QDQ as it is, or lowered to explicit integer operators. */
final class LowerStage extends BaseStage {
    LowerStage() {
        super("lower", List.of(MODEL, DESTINATION), List.of(OUTPUT));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        Model qdq = facts.get(MODEL);
        facts.put(OUTPUT, facts.get(DESTINATION).format() == Destination.Format.QOPERATOR ? toQOperator(qdq, false, null)
                : qdq);
    }

    /**
     * The QOperator form of a QDQ model: explicit integer operators with the same scales, zero
     * points, integer weights and biases (see {@link QOperatorLowering}).
     */
    static Model toQOperator(Model qdq, boolean verifyBetweenPasses, java.util.function.Consumer<String> log) {
        Model out = new Pipeline(List.of(new QOperatorLowering()), verifyBetweenPasses).run(qdq, log);
        ModelChecker.check(out);
        return out;
    }
}
