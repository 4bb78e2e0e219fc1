package dev.qwtonnx.testutil;

/** JVM properties set for the length of a block, as the tool reads its test switches ({@code qwt.*}). */
public final class SystemProperties {
    private SystemProperties() {
    }

    /** Runs {@code body} with {@code name} set to {@code value}, then puts back what was there (or nothing). */
    public static void with(String name, String value, Runnable body) {
        String before = System.getProperty(name);
        System.setProperty(name, value);
        try {
            body.run();
        } finally {
            if (before == null) {
                System.clearProperty(name);
            } else {
                System.setProperty(name, before);
            }
        }
    }
}
