package dev.qwtonnx;

/**
 * A problem caused by what the user gave us (a bad model, bad calibration data, a bad path or
 * option). The CLI prints its message as one line and exits with code 2; anything else that
 * escapes is an internal error (exit code 1).
 */
public class QwtException extends RuntimeException {
    public QwtException(String message) {
        super(message);
    }

    public QwtException(String message, Throwable cause) {
        super(message, cause);
    }
}
