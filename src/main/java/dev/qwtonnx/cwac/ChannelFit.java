package dev.qwtonnx.cwac;

/**
 * The fitted per-channel affine map yf ≈ a·yq + b of one layer, with the calibration-set sum of
 * squared errors before (a = 1, b = 0) and after.
 */
public record ChannelFit(double[] a, double[] b, double sseBefore, double sseAfter, long count) {
    public boolean isIdentity() {
        for (int c = 0; c < a.length; c++) {
            if (a[c] != 1.0 || b[c] != 0.0) {
                return false;
            }
        }
        return true;
    }
}
