package dev.qwtonnx.calib.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** --limit and --shuffle: which samples, in which order, reproducibly. */
class SampleLimitTest {
    static CalibrationSource numbered(int n) {
        List<Sample> s = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            s.add(new Sample("s" + i, Map.of("x", HostTensor.ofFloats(new long[] {1}, new float[] {i}))));
        }
        return CalibrationSources.ofList(s);
    }

    static List<String> ids(CalibrationSource src) {
        List<String> out = new ArrayList<>();
        src.forEach(s -> out.add(s.id()));
        return out;
    }

    /** The same samples without random access: only forward reading. */
    static CalibrationSource streamed(CalibrationSource src) {
        return new CalibrationSource() {
            @Override
            public int size() {
                return src.size();
            }

            @Override
            public Iterator<Sample> iterator() {
                return src.iterator();
            }
        };
    }

    @Test
    void limitTakesTheFirstSamplesInOrder() {
        assertEquals(List.of("s0", "s1", "s2"), ids(CalibrationSources.limit(numbered(10), 3, null)));
        assertEquals(10, CalibrationSources.limit(numbered(10), 0, null).size());
        assertEquals(10, CalibrationSources.limit(numbered(10), 50, null).size());
        assertThrows(QwtException.class, () -> CalibrationSources.limit(numbered(3), -1, null));
    }

    @Test
    void shuffleIsSeededAndPicksDistinctSamples() {
        List<String> a = ids(CalibrationSources.limit(numbered(50), 20, 7L));
        assertEquals(a, ids(CalibrationSources.limit(numbered(50), 20, 7L)), "same seed, same choice");
        assertNotEquals(a, ids(CalibrationSources.limit(numbered(50), 20, 8L)), "another seed, another choice");
        assertEquals(20, new HashSet<>(a).size());
        assertNotEquals(ids(CalibrationSources.limit(numbered(50), 20, null)), a);
        List<String> all = ids(CalibrationSources.limit(numbered(50), 0, 7L));
        assertEquals(50, new HashSet<>(all).size(), "a shuffle of everything keeps every sample");
        assertEquals(a, all.subList(0, 20), "the limit is a prefix of the shuffled order");
        // A streamed source gets the same choice, in source order.
        List<String> s = ids(CalibrationSources.limit(streamed(numbered(50)), 20, 7L));
        assertEquals(new HashSet<>(a), new HashSet<>(s));
        assertTrue(s.equals(s.stream().sorted((x, y) -> Integer.compare(Integer.parseInt(x.substring(1)),
                Integer.parseInt(y.substring(1)))).toList()));
    }
}
