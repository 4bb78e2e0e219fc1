package dev.qwtonnx.testutil;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.HostTensor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.ModelIO;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** all-MiniLM-L6-v2 from the test-scoped langchain4j artifact, with its tokenizer. */
public final class MiniLm {
    private MiniLm() {
    }

    /** Copies a classpath resource to a temporary file (ModelIO reads files). */
    public static Path resourceFile(String name, Path dir) throws IOException {
        Path out = dir.resolve(name);
        try (InputStream in = MiniLm.class.getResourceAsStream("/" + name)) {
            if (in == null) {
                throw new IOException("resource not on the test classpath: " + name);
            }
            Files.copy(in, out);
        }
        return out;
    }

    public static Model floatModel(Path dir) throws IOException {
        return ModelIO.load(resourceFile("all-minilm-l6-v2.onnx", dir));
    }

    /** One sample per sentence (batch 1, its own length), with the three BERT inputs. */
    public static List<Sample> samples(List<String> sentences, int maxLength) throws IOException {
        List<Sample> out = new ArrayList<>();
        try (InputStream in = MiniLm.class.getResourceAsStream("/all-minilm-l6-v2-tokenizer.json");
                HuggingFaceTokenizer tok = HuggingFaceTokenizer.newInstance(in,
                        Map.of("maxLength", String.valueOf(maxLength), "truncation", "true", "padding", "false"))) {
            int i = 0;
            for (String s : sentences) {
                Encoding e = tok.encode(s);
                long[] shape = {1, e.getIds().length};
                out.add(new Sample("sentence-" + (i++), Map.of(
                        "input_ids", HostTensor.ofLongs(shape, e.getIds()),
                        "attention_mask", HostTensor.ofLongs(shape, e.getAttentionMask()),
                        "token_type_ids", HostTensor.ofLongs(shape, e.getTypeIds()))));
            }
        }
        return out;
    }

    /** The mean of the token embeddings of last_hidden_state [1, S, H] (the sentence embedding). */
    public static float[] meanPool(float[] hidden, long[] shape) {
        int s = (int) shape[1];
        int h = (int) shape[2];
        float[] out = new float[h];
        for (int t = 0; t < s; t++) {
            for (int k = 0; k < h; k++) {
                out[k] += hidden[t * h + k] / s;
            }
        }
        return out;
    }
}
