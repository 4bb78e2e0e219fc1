package dev.qwtonnx;

/** The tool's name and version, as every layer reports them. */
public final class Version {
    public static final String TOOL = "qwt-onnx";

    private Version() {
    }

    /** The version from the jar's manifest; "dev" when run from classes (tests, an IDE). */
    public static String version() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }
}
