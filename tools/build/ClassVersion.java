import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Opcodes;

/**
 * Build step (pom.xml, process-classes): copies the classes of a jar compiled for Java 5 into the build's class
 * directory as Java 8 class files, stack-map frames computed, the code unchanged.
 *
 * <p>Why: the JVM leaves class files older than Java 6 out of its class-data-sharing archive ("Pre JDK 6 class not
 * supported by CDS"), and picocli's jar is compiled for Java 5; so every run of the tool read, inflated and verified
 * picocli's 170-odd classes from the jar again, while every other class came mapped from the launcher's archive
 * (docs/decisions/0023-launcher.md). The shade plugin then takes these classes instead of the jar's.
 *
 * <p>Usage: {@code java -cp asm.jar tools/build/ClassVersion.java LIBRARY.jar PACKAGE_DIR CLASSES_DIR}; only entries
 * under {@code PACKAGE_DIR/} are copied. A class already copied from the same jar (a stamp beside the class
 * directory, newer than the jar) is not made again.
 */
public final class ClassVersion {
    private ClassVersion() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: ClassVersion LIBRARY.jar PACKAGE_DIR CLASSES_DIR");
            System.exit(2);
        }
        Path jar = Path.of(args[0]);
        String prefix = args[1].endsWith("/") ? args[1] : args[1] + "/";
        Path classes = Path.of(args[2]);
        // beside the class directory, not in it: nothing of this step but the classes reaches the jar
        Path stamp = classes.toAbsolutePath().resolveSibling(prefix.replace('/', '.') + "class-version");
        boolean fresh = Files.exists(stamp)
                && Files.getLastModifiedTime(stamp).compareTo(Files.getLastModifiedTime(jar)) > 0
                && Files.readString(stamp).equals(jar.toAbsolutePath().toString());
        int n = 0;
        try (JarFile in = new JarFile(jar.toFile());
                URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()},
                        ClassVersion.class.getClassLoader())) {
            for (Enumeration<JarEntry> e = in.entries(); e.hasMoreElements();) {
                JarEntry entry = e.nextElement();
                if (!entry.getName().startsWith(prefix) || !entry.getName().endsWith(".class")) {
                    continue;
                }
                Path out = classes.resolve(entry.getName());
                n++;
                if (fresh && Files.exists(out)) {
                    continue;
                }
                byte[] bytes;
                try (InputStream s = in.getInputStream(entry)) {
                    bytes = s.readAllBytes();
                }
                Files.createDirectories(out.getParent());
                Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
                Files.write(tmp, java8(bytes, loader));
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
        }
        if (n == 0) {
            System.err.println("ClassVersion: no class under " + prefix + " in " + jar);
            System.exit(1);
        }
        Files.writeString(stamp, jar.toAbsolutePath().toString());
        System.out.println("ClassVersion: " + n + " classes of " + jar.getFileName() + " as Java 8 class files");
    }

    /**
     * The class as a Java 8 class file: the same code, with the stack-map frames a class file of version 50 and
     * later carries (computed; the frames' common supertypes resolved through {@code loader}). Older class files are
     * verified by the JVM's type-inferencing verifier, which needs none.
     */
    static byte[] java8(byte[] classFile, ClassLoader loader) {
        ClassReader reader = new ClassReader(classFile);
        ClassWriter writer = new ClassWriter(ClassWriter.COMPUTE_FRAMES) {
            @Override
            protected ClassLoader getClassLoader() {
                return loader;
            }
        };
        reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
            @Override
            public void visit(int version, int access, String name, String signature, String superName,
                    String[] interfaces) {
                super.visit(Math.max(version, Opcodes.V1_8), access, name, signature, superName, interfaces);
            }
        }, ClassReader.SKIP_FRAMES);
        return writer.toByteArray();
    }
}
