import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;

/**
 * The least a JVM tool that quantizes with ONNX Runtime does: start, load ORT's native library, open one
 * session over the model, exit. tools/bench/floor.sh times it as a whole process beside ORT's Python
 * quantize_static; not part of the build or the tests.
 */
public class OpenSession {
    public static void main(String[] args) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions();
                OrtSession s = env.createSession(args[0], o)) {
            System.out.println(s.getInputNames());
        }
    }
}
