package dev.qwtonnx.calib.data;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** Shared helpers for the calibration-data tests. */
final class DataTestSupport {
    private DataTestSupport() {
    }

    /** A file under src/test/resources/calib/. */
    static Path resource(String relative) {
        URL url = DataTestSupport.class.getResource("/calib/" + relative);
        assertNotNull(url, "missing test resource calib/" + relative);
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The message is one line and contains every part. */
    static void assertOneLine(Throwable e, String... parts) {
        String m = e.getMessage();
        assertNotNull(m);
        assertFalse(m.contains("\n") || m.contains("\r"), "message spans lines: " + m);
        for (String p : parts) {
            assertTrue(m.contains(p), "message lacks \"" + p + "\": " + m);
        }
    }
}
