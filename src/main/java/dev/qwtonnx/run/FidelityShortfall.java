package dev.qwtonnx.run;

import dev.qwtonnx.QwtException;
import java.util.List;

/**
 * {@code --strict}: the output misses its accuracy target or its fidelity is poor, so the run stops
 * before writing it. The CLI prints the lines and exits with code 3.
 */
public final class FidelityShortfall extends QwtException {
    private final List<String> lines;

    FidelityShortfall(List<String> lines) {
        super(String.join("; ", lines));
        this.lines = List.copyOf(lines);
    }

    /** The warning lines, each beginning "warning:". */
    public List<String> lines() {
        return lines;
    }
}
