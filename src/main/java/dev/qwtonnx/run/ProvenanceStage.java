package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.MODEL;
import static dev.qwtonnx.run.QuantizeRun.WITH_TABLES;

import dev.qwtonnx.Version;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import java.util.List;

/** Records the tool, its version and the options in the model's metadata, so an output says how it was made. */
final class ProvenanceStage extends QuantizeStage {
    ProvenanceStage(QuantizeRun.Options options) {
        super("provenance", options, List.of(WITH_TABLES), List.of(MODEL));
    }

    @Override
    public void run(RunContext ctx, Facts facts) {
        facts.put(MODEL, withProvenance(facts.get(WITH_TABLES), options));
    }

    static Model withProvenance(Model model, QuantizeRun.Options options) {
        ModelProto.Builder b = model.proto().toBuilder();
        put(b, "qwt.tool", Version.TOOL);
        put(b, "qwt.version", Version.version());
        put(b, "qwt.target", options.quant().target().name()); // what verify checks the model against by default
        put(b, "qwt.options", options.quant() + " " + options.cwac() + " " + options.calib() + " targetOpset="
                + options.opset() + " embeddings=" + options.embeddings());
        return new Model(b.build());
    }

    private static void put(ModelProto.Builder b, String key, String value) {
        for (int i = 0; i < b.getMetadataPropsCount(); i++) {
            if (b.getMetadataProps(i).getKey().equals(key)) {
                b.setMetadataProps(i, StringStringEntryProto.newBuilder().setKey(key).setValue(value));
                return;
            }
        }
        b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(key).setValue(value));
    }
}
