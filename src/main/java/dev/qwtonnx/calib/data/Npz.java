package dev.qwtonnx.calib.data;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * NumPy's .npz archives ({@code np.savez}, {@code np.savez_compressed}): a zip, stored or
 * deflated, of {@code <name>.npy} entries. Entries that are not .npy files are ignored.
 */
public final class Npz {
    private Npz() {
    }

    /** The arrays by name, in archive order. */
    public static Map<String, HostTensor> read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new QwtException(file + ": no such .npz file");
        }
        Map<String, HostTensor> out = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory() || !e.getName().endsWith(".npy")) {
                    continue;
                }
                String name = e.getName().substring(0, e.getName().length() - 4);
                String origin = file + "[" + e.getName() + "]";
                if (out.containsKey(name)) {
                    throw new QwtException(origin + ": array '" + name + "' appears twice in the archive");
                }
                try (CheckedInputStream in = new CheckedInputStream(zip.getInputStream(e), new CRC32())) {
                    HostTensor t = Npy.read(in, origin);
                    in.transferTo(OutputStream.nullOutputStream()); // ZipFile does not check CRCs itself
                    if (e.getCrc() != -1 && in.getChecksum().getValue() != e.getCrc()) {
                        throw new QwtException(origin + ": corrupt archive entry (checksum mismatch)");
                    }
                    out.put(name, t);
                } catch (ZipException ze) {
                    throw new QwtException(origin + ": corrupt archive entry: " + ze.getMessage(), ze);
                }
            }
        } catch (ZipException e) {
            throw new QwtException(file + ": not a .npz archive (" + e.getMessage() + ")", e);
        } catch (NoSuchFileException e) {
            throw new QwtException(file + ": no such .npz file", e);
        } catch (IOException e) {
            throw new QwtException(file + ": cannot read: " + Npy.oneLine(e), e);
        } catch (IllegalArgumentException e) { // malformed entry names
            throw new QwtException(file + ": corrupt .npz archive (" + e.getMessage() + ")", e);
        }
        return out;
    }

    /** Writes a deflated archive with one {@code <name>.npy} entry per array, in map order. */
    public static void write(Path file, Map<String, HostTensor> arrays) {
        for (String name : arrays.keySet()) {
            if (name == null || name.isEmpty()) {
                throw new QwtException(file + ": an array name is empty");
            }
        }
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(os)) {
            for (var e : arrays.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey() + ".npy");
                entry.setTimeLocal(java.time.LocalDateTime.of(1980, 1, 1, 0, 0)); // as NumPy does: reproducible bytes
                zip.putNextEntry(entry);
                Npy.write(zip, e.getValue());
                zip.closeEntry();
            }
        } catch (IOException e) {
            throw new QwtException(file + ": cannot write: " + Npy.oneLine(e), e);
        } catch (QwtException e) {
            throw new QwtException(file + ": " + e.getMessage(), e);
        }
    }
}
