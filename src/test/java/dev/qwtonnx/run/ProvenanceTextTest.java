package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qwtonnx.cwac.CwacOptions;
import dev.qwtonnx.quant.QuantOptions;
import dev.qwtonnx.target.Target;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The provenance metadata's options text is the records' own toString, so outputs keep their bytes. */
class ProvenanceTextTest {
    @Test
    void theOptionsTextIsTheRecordsOwn() {
        for (String name : Target.names()) {
            QuantOptions q = QuantOptions.defaults().withTarget(Target.named(name))
                    .withKeepFloat(new LinkedHashSet<>(List.of("b", "a"))).withFloatBudget(2).withKeepSlowInt8(true);
            assertEquals(q.toString(), ProvenanceStage.text(q));
        }
        assertEquals(QuantOptions.defaults().toString(), ProvenanceStage.text(QuantOptions.defaults()));
        assertEquals(CwacOptions.defaults().toString(), ProvenanceStage.text(CwacOptions.defaults()));
        assertEquals(CwacOptions.compensateDefaults().toString(), ProvenanceStage.text(CwacOptions.compensateDefaults()));
    }

    record Inner(double x, String s) {
    }

    record Outer(List<Inner> list, Map<String, Inner> map, Inner none, int[] skipped) {
    }

    @Test
    void nestedRecordsCollectionsAndNullsReadAsToStringDoes() {
        Map<String, Inner> map = new TreeMap<>(Map.of("k", new Inner(0.1, "v"), "j", new Inner(-0.0, null)));
        Outer o = new Outer(List.of(new Inner(1e-9, "a"), new Inner(Double.NaN, "")), map, null, null);
        assertEquals(o.toString(), ProvenanceStage.text(o));
    }
}
