package dev.qwtonnx;

/**
 * The tool's name and version, as written into the models and reports it makes. It sits in the
 * root package so that every layer (the verifier as well as the API) can name the tool without
 * importing a layer above it.
 */
public final class Version {
    public static final String TOOL = "qwt-onnx";

    private Version() {
    }

    /** The version in the jar's manifest, or "dev" when running from classes (tests, an IDE). */
    public static String version() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }
}
