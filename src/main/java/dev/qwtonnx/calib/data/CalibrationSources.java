package dev.qwtonnx.calib.data;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;

// TEMPORARY placeholder so the lead can compile; the data-reader engineer replaces this file.
public final class CalibrationSources {
    private CalibrationSources() {
    }

    public static CalibrationSource open(Path dir, List<InputSpec> specs) {
        throw new UnsupportedOperationException("placeholder");
    }

    public static List<CalibrationSource> split(CalibrationSource src, double holdoutFraction, long seed) {
        throw new UnsupportedOperationException("placeholder");
    }

    public static CalibrationSource ofList(List<Sample> samples) {
        List<Sample> copy = List.copyOf(samples);
        return new CalibrationSource() {
            @Override
            public int size() {
                return copy.size();
            }

            @Override
            public Iterator<Sample> iterator() {
                return copy.iterator();
            }
        };
    }
}
