package dev.qwtonnx.testutil;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/** English sentences from Debian's `fortunes` package (installed by .ci/run), in a seeded order. */
public final class Fortunes {
    public static final Path DIR = Path.of("/usr/share/games/fortunes");
    /**
     * Files Debian's fortunes-zh puts beside the English ones (the benchmark zoo's Chinese texts,
     * tools/bench/zoo.py): Chinese, and not part of the tests' sentences whether installed or not.
     */
    private static final java.util.Set<String> OTHER_LANGUAGES = java.util.Set.of("chinese", "song100", "tang300");

    private Fortunes() {
    }

    public static boolean available() {
        return Files.isDirectory(DIR);
    }

    /** Fortunes of 20..300 characters, whitespace folded, shuffled with {@code seed}. */
    public static List<String> load(long seed) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.list(DIR)) {
            files = s.filter(p -> Files.isRegularFile(p) && !p.getFileName().toString().contains(".")
                    && !OTHER_LANGUAGES.contains(p.getFileName().toString())).sorted().toList();
        }
        List<String> out = new ArrayList<>();
        for (Path f : files) {
            String text = new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
            for (String block : text.split("\n%\n")) {
                String s = block.replaceAll("\\s+", " ").trim();
                if (s.length() >= 20 && s.length() <= 300) {
                    out.add(s);
                }
            }
        }
        Collections.sort(out);
        Collections.shuffle(out, new Random(seed));
        return out;
    }
}
