package dev.qwtonnx.verify;

import java.util.ArrayList;
import java.util.List;

/**
 * The geometry of the report's SVG charts, computed here so that the HTML template only places
 * shapes: per-layer SQNR bars, the a_c histogram and the latency comparison.
 */
public final class ReportCharts {
    public static final int WIDTH = 1100;
    static final int LABEL_WIDTH = 330;
    static final int ROW = 16;

    private ReportCharts() {
    }

    /** Everything the template draws. */
    public record Charts(BarChart layers, Histogram gains, LatencyChart latency) {
    }

    /** A horizontal bar chart with one row per layer: a global bar, a local bar and a "before" tick. */
    public record BarChart(int width, int height, int plotX, int plotWidth, double max, List<Tick> ticks,
            List<Row> rows) {
    }

    public record Tick(double x, String label) {
    }

    /**
     * One layer: {@code width} is the global SQNR bar, {@code localWidth} the local one (negative when
     * not measured), {@code beforeX} the position of the before-compensation mark (negative when none).
     */
    public record Row(double y, String label, String value, double width, double localWidth, double beforeX,
            boolean unfused, String title) {
    }

    /** {@code oneX} marks a_c = 1 (no change), negative when 1 is outside the bins. */
    public record Histogram(int width, int height, List<HistBar> bars, List<Tick> ticks, int maxCount, double oneX) {
    }

    public record HistBar(double x, double y, double width, double height, String title) {
    }

    /** Two rows (float, int8): median bar and a p10–p90 whisker. */
    public record LatencyChart(int width, int height, int plotX, List<LatencyRow> rows, List<Tick> ticks,
            String speedup) {
    }

    public record LatencyRow(double y, String label, double width, double lowX, double highX, String value) {
    }

    public static Charts of(Report r) {
        return new Charts(layers(r.layers().layers()), gains(r.compensation()), latency(r.cost()));
    }

    static BarChart layers(List<Report.LayerFidelity> layers) {
        double max = 10;
        for (Report.LayerFidelity l : layers) {
            max = Math.max(max, finite(l.sqnrDb()));
            max = Math.max(max, finite(l.localSqnrDb()));
            max = Math.max(max, finite(l.sqnrBeforeDb()));
        }
        max = Math.min(80, Math.ceil(max / 10) * 10);
        int plotX = LABEL_WIDTH;
        int plotWidth = WIDTH - LABEL_WIDTH - 80;
        List<Row> rows = new ArrayList<>();
        double y = 24;
        for (Report.LayerFidelity l : layers) {
            double w = scale(l.sqnrDb(), max, plotWidth);
            double lw = l.localSqnrDb() == null ? -1 : scale(l.localSqnrDb(), max, plotWidth);
            double bx = l.sqnrBeforeDb() == null ? -1 : plotX + scale(l.sqnrBeforeDb(), max, plotWidth);
            String value = l.localSqnrDb() == null ? String.format(java.util.Locale.ROOT, "%.1f dB", l.sqnrDb())
                    : String.format(java.util.Locale.ROOT, "%.1f / %.1f dB", l.sqnrDb(), l.localSqnrDb());
            String title = l.node() + ": SQNR " + String.format(java.util.Locale.ROOT, "%.2f", l.sqnrDb()) + " dB"
                    + (l.localSqnrDb() == null ? "" : String.format(java.util.Locale.ROOT, ", own error %.2f dB", l.localSqnrDb()))
                    + (l.sqnrBeforeDb() == null ? "" : String.format(java.util.Locale.ROOT, ", before compensation %.2f dB", l.sqnrBeforeDb()))
                    + (l.fused() ? "" : "; NOT FUSED: " + l.unfusedReason());
            rows.add(new Row(y, shorten(l.node(), 48), value, w, lw, bx, !l.fused(), title));
            y += ROW;
        }
        List<Tick> ticks = new ArrayList<>();
        for (int t = 0; t <= max; t += 10) {
            ticks.add(new Tick(plotX + scale(t, max, plotWidth), t + " dB"));
        }
        return new BarChart(WIDTH, (int) y + 10, plotX, plotWidth, max, ticks, rows);
    }

    static Histogram gains(Report.Compensation c) {
        if (c == null || c.gainHistogram() == null || c.gainHistogram().bins().isEmpty()) {
            return null;
        }
        List<Report.Bin> bins = c.gainHistogram().bins();
        int maxCount = 1;
        for (Report.Bin b : bins) {
            maxCount = Math.max(maxCount, b.count());
        }
        int width = 640;
        int height = 220;
        int plotX = 50;
        int plotH = 170;
        double bw = (double) (width - plotX - 20) / bins.size();
        List<HistBar> bars = new ArrayList<>();
        for (int i = 0; i < bins.size(); i++) {
            Report.Bin b = bins.get(i);
            double h = (double) b.count() / maxCount * plotH;
            bars.add(new HistBar(plotX + i * bw + 1, 10 + plotH - h, Math.max(1, bw - 2), h,
                    String.format(java.util.Locale.ROOT, "a_c in [%.4f, %.4f): %d channels", b.low(), b.high(), b.count())));
        }
        List<Tick> ticks = new ArrayList<>();
        for (int i = 0; i <= bins.size(); i += Math.max(1, bins.size() / 4)) {
            double v = i < bins.size() ? bins.get(i).low() : bins.get(bins.size() - 1).high();
            ticks.add(new Tick(plotX + i * bw, String.format(java.util.Locale.ROOT, "%.3f", v)));
        }
        double lo = bins.get(0).low();
        double hi = bins.get(bins.size() - 1).high();
        double oneX = lo <= 1 && 1 <= hi ? plotX + (1 - lo) / (hi - lo) * bw * bins.size() : -1;
        return new Histogram(width, height, bars, ticks, maxCount, oneX);
    }

    static LatencyChart latency(Report.Cost c) {
        if (c.floatLatency() == null || c.quantizedLatency() == null) {
            return null;
        }
        double max = Math.max(c.floatLatency().p90Ms(), c.quantizedLatency().p90Ms()) * 1.1;
        int plotX = 120;
        int plotWidth = 640 - plotX - 130;
        List<LatencyRow> rows = new ArrayList<>();
        int y = 14;
        for (var e : List.of(java.util.Map.entry("float", c.floatLatency()), java.util.Map.entry("int8", c.quantizedLatency()))) {
            Report.Latency l = e.getValue();
            rows.add(new LatencyRow(y, e.getKey(), scale(l.medianMs(), max, plotWidth), plotX + scale(l.p10Ms(), max, plotWidth),
                    plotX + scale(l.p90Ms(), max, plotWidth),
                    String.format(java.util.Locale.ROOT, "%.2f ms (%.2f–%.2f)", l.medianMs(), l.p10Ms(), l.p90Ms())));
            y += 34;
        }
        List<Tick> ticks = new ArrayList<>();
        double step = niceStep(max / 4);
        for (double t = 0; t <= max; t += step) {
            ticks.add(new Tick(plotX + scale(t, max, plotWidth), milliseconds(t)));
        }
        return new LatencyChart(640, y + 24, plotX, rows, ticks, String.format(java.util.Locale.ROOT, "%.2f×", c.speedup()));
    }

    /** A tick label without trailing zeros: "0 ms", "2.5 ms", "50 ms". */
    private static String milliseconds(double t) {
        return java.math.BigDecimal.valueOf(t).round(new java.math.MathContext(3)).stripTrailingZeros().toPlainString()
                + " ms";
    }

    private static double niceStep(double raw) {
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double n = raw / mag;
        return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
    }

    private static double scale(double v, double max, int width) {
        double x = Double.isFinite(v) ? Math.max(0, Math.min(v, max)) : (v > 0 ? max : 0);
        return Math.round(x / max * width * 10) / 10.0;
    }

    private static double finite(Double v) {
        return v == null || !Double.isFinite(v) ? 0 : v;
    }

    private static String shorten(String s, int n) {
        return s.length() <= n ? s : "…" + s.substring(s.length() - n + 1);
    }
}
