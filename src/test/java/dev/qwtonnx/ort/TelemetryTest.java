package dev.qwtonnx.ort;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.qwtonnx.testutil.ExampleData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TelemetryTest {
    /** Variables by which ORT 1.29 counts a process as a CI job's, where it starts no telemetry whatever we set. */
    private static final List<String> CI_VARIABLES = List.of("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI",
            "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR",
            "BITBUCKET_BUILD_NUMBER", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", "ORT_RUNNING_UNIT_TESTS");

    /**
     * A JVM started with what the launcher adds ({@link Telemetry#offUnlessChosen}) makes an ORT session and leaves
     * nothing of ORT's telemetry behind: no device id or event queue under its cache directory, no
     * {@code mat-debug-PID.log} in its temporary directory. The same JVM without it does leave them (else ORT has no
     * telemetry to turn off, and the test has nothing to show).
     */
    @Test
    void theSwitchTheLauncherSetsLeavesNoTraceOfOrtsTelemetry(@TempDir Path dir) throws Exception {
        Path off = dir.resolve("off");
        Path on = dir.resolve("on");
        run(off, true);
        run(on, false);
        assumeTrue(Files.exists(on.resolve("cache").resolve("Microsoft")),
                "this ORT keeps no telemetry state without the switch: " + listing(on));
        // The same variables the launcher gives the JVM that runs a command (LauncherTest: the child gets them).
        assertEquals(List.of(), listing(off.resolve("cache")), "ORT's telemetry state with the switch");
        assertEquals(List.of(), listing(off.resolve("tmp")), "ORT's telemetry log file with the switch");
        assertTrue(listing(on.resolve("tmp")).stream().anyMatch(n -> n.startsWith("mat-debug-")), listing(on).toString());
    }

    private static void run(Path dir, boolean switchedOff) throws Exception {
        Files.createDirectories(dir.resolve("cache"));
        Files.createDirectories(dir.resolve("tmp"));
        // ORT's Java loader inflates its libraries under java.io.tmpdir, which stays outside TMPDIR's listing.
        ProcessBuilder b = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Djava.io.tmpdir=" + Files.createDirectories(dir.resolve("jvm-tmp")), "-cp",
                System.getProperty("java.class.path"), MakesASession.class.getName(),
                ExampleData.DIR.resolve("cnn.onnx").toAbsolutePath().toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile());
        Map<String, String> env = b.environment();
        CI_VARIABLES.forEach(env::remove);
        env.remove(Telemetry.SWITCH);
        env.remove(Telemetry.LATER_SWITCH);
        env.put("XDG_CACHE_HOME", dir.resolve("cache").toString());
        env.put("TMPDIR", dir.resolve("tmp").toString());
        // The child with telemetry on must not reach the collector from a test: libcurl's proxy variables point at a
        // closed local port, and the CA bundle it would verify the collector with is not there.
        for (String proxy : List.of("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")) {
            env.put(proxy, "http://127.0.0.1:9");
        }
        env.remove("no_proxy");
        env.remove("NO_PROXY");
        env.put("SSL_CERT_FILE", dir.resolve("no-ca-bundle.pem").toString());
        if (switchedOff) {
            env.putAll(Telemetry.offUnlessChosen(env));
        }
        Process p = b.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child ended");
        assertEquals(0, p.exitValue(), Files.readString(dir.resolve("out.txt")));
    }

    private static List<String> listing(Path dir) throws Exception {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(f -> !f.equals(dir)).map(f -> dir.relativize(f).toString()).sorted().toList();
        }
    }

    /** Makes a session of the model, and nothing else. */
    static final class MakesASession {
        public static void main(String[] args) throws Exception {
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            try (OrtSession s = env.createSession(args[0])) {
                System.out.println(s.getInputNames());
            }
        }
    }
}
