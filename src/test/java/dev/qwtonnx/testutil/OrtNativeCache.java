package dev.qwtonnx.testutil;

import dev.qwtonnx.ort.NativeLibraryCache;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Loads ORT's native libraries in a test JVM from the cache the command line uses ({@link NativeLibraryCache}), before
 * any test. Without it ORT's loader inflates 28 MB into a new temporary directory per JVM, deleted at the JVM's exit
 * but for the directory itself: every test run left one in the temporary folder per JVM.
 */
public final class OrtNativeCache implements LauncherSessionListener {
    @Override
    public void launcherSessionOpened(LauncherSession session) {
        NativeLibraryCache.install();
    }
}
