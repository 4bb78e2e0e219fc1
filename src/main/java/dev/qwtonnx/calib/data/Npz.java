package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/** NumPy's .npz archives: a zip of {@code <name>.npy} entries. */
public final class Npz {
    private Npz() {
    }

    public static Map<String, HostTensor> read(Path file) {
        Map<String, HostTensor> out = new TreeMap<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory() || !e.getName().endsWith(".npy")) {
                    continue;
                }
                String name = e.getName().substring(0, e.getName().length() - 4);
                out.put(name, Npy.read(zip.getInputStream(e), file + ":" + e.getName()));
            }
        } catch (ZipException e) {
            throw new QwtException(file + ": not a .npz archive (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new QwtException(file + ": cannot read: " + e.getMessage());
        }
        return out;
    }

    public static void write(Path file, Map<String, HostTensor> arrays) {
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(os)) {
            for (var e : new LinkedHashMap<>(arrays).entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey() + ".npy");
                entry.setTime(0); // reproducible archives
                zip.putNextEntry(entry);
                Npy.write(zip, e.getValue());
                zip.closeEntry();
            }
        } catch (IOException e) {
            throw new QwtException(file + ": cannot write: " + e.getMessage());
        }
    }
}
