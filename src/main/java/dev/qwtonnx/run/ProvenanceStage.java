package dev.qwtonnx.run;

import static dev.qwtonnx.run.QuantizeRun.MODEL;
import static dev.qwtonnx.run.QuantizeRun.WITH_TABLES;

import dev.qwtonnx.Version;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.StringStringEntryProto;
import java.lang.reflect.RecordComponent;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

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
        put(b, "qwt.options", text(options.quant()) + " " + text(options.cwac()) + " " + options.calib()
                + " targetOpset=" + options.opset() + " embeddings=" + options.embeddings());
        return new Model(b.build());
    }

    /**
     * What {@code value.toString()} gives for the options records (none overrides it), written out here:
     * a record's generated toString spins method handles on its first call, about 0.1 s of every run on a
     * fresh JVM, for a line of metadata. The same text (test).
     */
    static String text(Object value) {
        if (value instanceof Record r) {
            StringBuilder s = new StringBuilder(r.getClass().getSimpleName()).append('[');
            RecordComponent[] components = r.getClass().getRecordComponents();
            for (int i = 0; i < components.length; i++) {
                Object v;
                try {
                    v = components[i].getAccessor().invoke(r);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
                s.append(i == 0 ? "" : ", ").append(components[i].getName()).append('=').append(text(v));
            }
            return s.append(']').toString();
        }
        if (value instanceof Collection<?> c) {
            return c.stream().map(ProvenanceStage::text).collect(Collectors.joining(", ", "[", "]"));
        }
        if (value instanceof Map<?, ?> m) {
            return m.entrySet().stream().map(e -> text(e.getKey()) + "=" + text(e.getValue()))
                    .collect(Collectors.joining(", ", "{", "}"));
        }
        return String.valueOf(value);
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
