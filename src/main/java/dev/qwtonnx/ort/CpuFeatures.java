package dev.qwtonnx.ort;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * What this machine's CPU offers ORT's int8 kernels. On x86 without VNNI, ORT multiplies u8 by s8
 * with 16-bit intermediate sums (pmaddubsw) that saturate when two full-range products add up,
 * the reason reduce_range exists. Read from /proc/cpuinfo on Linux; elsewhere unknown (no warning).
 */
public record CpuFeatures(String arch, Set<String> flags, boolean known) {
    public static CpuFeatures current() {
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        return fromCpuinfo(arch, Path.of("/proc/cpuinfo"));
    }

    static CpuFeatures fromCpuinfo(String arch, Path cpuinfo) {
        Set<String> flags = new HashSet<>();
        try {
            for (String line : Files.readAllLines(cpuinfo)) {
                if (line.startsWith("flags")) {
                    int colon = line.indexOf(':');
                    for (String f : line.substring(colon + 1).trim().split("\\s+")) {
                        flags.add(f);
                    }
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            return new CpuFeatures(arch, Set.of(), false);
        }
        return new CpuFeatures(arch, Set.copyOf(flags), !flags.isEmpty());
    }

    public boolean isX86() {
        return arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x86");
    }

    /** x86 with no VNNI (AVX-512 VNNI or AVX-VNNI): full-range int8 weights may saturate in ORT's kernels. */
    public boolean lacksInt8DotProduct() {
        return known && isX86() && !flags.contains("avx512_vnni") && !flags.contains("avx_vnni");
    }
}
