package dev.qwtonnx.ort;

import java.io.IOException;
import java.io.InputStream;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.jar.JarEntry;

/**
 * ORT's native libraries loaded from a per-user cache rather than from a fresh copy per process.
 *
 * <p>ORT's Java loader inflates its native library (28 MB on linux-x64) out of the jar into a new
 * temporary directory on every start: about 0.2 s of a small model's 1.5 s {@code java -jar} run.
 * The same bytes, written once under {@code $XDG_CACHE_HOME/qwt-onnx} (or {@code ~/.cache/qwt-onnx})
 * in a directory named by the jar entries' CRC-32 and size, are loaded from there through ORT's own
 * {@code onnxruntime.native.path} property. A user who sets that property keeps it; where the cache
 * cannot be written, or the libraries are not in a jar, ORT loads as it always does. Files are
 * written to a temporary name and renamed, so concurrent first runs never load a partial library.
 */
public final class NativeLibraryCache {
    static final String PROPERTY = "onnxruntime.native.path";
    private static final String[] LIBRARIES = {"onnxruntime", "onnxruntime4j_jni"};

    private NativeLibraryCache() {
    }

    /**
     * Points ORT at cached copies of its libraries, writing them on first use. Call before the first
     * ORT call of the process; returns the directory used, or null when ORT is left to load its own way.
     */
    public static Path install() {
        return install(cacheRoot());
    }

    /** {@link #install()} with the cache under {@code root}. */
    static Path install(Path root) {
        if (System.getProperty(PROPERTY) != null) {
            return null;
        }
        try {
            String platform = platform();
            if (root == null || platform == null) {
                return null;
            }
            List<JarEntry> entries = new ArrayList<>();
            List<URL> urls = new ArrayList<>();
            for (String lib : LIBRARIES) {
                URL url = NativeLibraryCache.class.getClassLoader()
                        .getResource("ai/onnxruntime/native/" + platform + "/" + System.mapLibraryName(lib));
                URLConnection c = url == null ? null : url.openConnection();
                if (!(c instanceof JarURLConnection jar)) {
                    return null; // not in a jar (an IDE's exploded classes): nothing to save
                }
                c.setUseCaches(false);
                JarEntry e = jar.getJarEntry();
                if (e.getSize() < 0 || e.getCrc() < 0) {
                    return null;
                }
                entries.add(e);
                urls.add(url);
            }
            StringBuilder key = new StringBuilder("ort-" + platform);
            for (JarEntry e : entries) {
                key.append('-').append(Long.toHexString(e.getCrc())).append('-').append(Long.toHexString(e.getSize()));
            }
            Path dir = root.resolve(key.toString());
            Files.createDirectories(dir);
            for (int i = 0; i < entries.size(); i++) {
                Path file = dir.resolve(System.mapLibraryName(LIBRARIES[i]));
                if (!Files.isRegularFile(file) || Files.size(file) != entries.get(i).getSize()) {
                    extract(urls.get(i), file, entries.get(i).getSize());
                }
            }
            System.setProperty(PROPERTY, dir.toString());
            return dir;
        } catch (IOException | RuntimeException e) {
            return null; // a cache is an optimization: ORT extracts to a temporary directory as before
        }
    }

    private static void extract(URL url, Path file, long size) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".part");
        try {
            URLConnection c = url.openConnection();
            c.setUseCaches(false);
            try (InputStream in = c.getInputStream()) {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            if (Files.size(tmp) != size) {
                throw new IOException("short copy of " + url);
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** {@code $XDG_CACHE_HOME/qwt-onnx}, else {@code ~/.cache/qwt-onnx}; null without a home. */
    public static Path cacheRoot() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
            return Path.of(xdg, "qwt-onnx");
        }
        String home = System.getProperty("user.home");
        return home == null || home.isBlank() || home.equals("?") ? null : Path.of(home, ".cache", "qwt-onnx");
    }

    /** ORT's name for this platform's folder in its jar ({@code linux-x64}, {@code osx-aarch64}, …), or null. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.contains("linux") ? "linux" : os.contains("mac") || os.contains("darwin") ? "osx"
                : os.contains("win") ? "win" : null;
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x64" : arch.equals("aarch64") ? "aarch64" : null;
        return o == null || a == null ? null : o + "-" + a;
    }
}
