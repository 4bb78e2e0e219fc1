package dev.qwtonnx.testutil;

import dev.qwtonnx.calib.FloatTensor;
import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.verify.Fidelity;
import java.util.List;

/** Mean and worst cosine of mean-pooled sentence embeddings, quantized against float. */
public record EmbeddingFidelity(double mean, double min) {
    public static EmbeddingFidelity measure(Model floatModel, Model quant, List<Sample> samples) {
        String out = "last_hidden_state";
        double sum = 0;
        double min = 1;
        try (OrtRunner f = new OrtRunner(floatModel, List.of()); OrtRunner q = new OrtRunner(quant, List.of())) {
            for (Sample s : samples) {
                FloatTensor a = f.run(s, List.of(out)).get(out);
                FloatTensor b = q.run(s, List.of(out)).get(out);
                double c = Fidelity.cosine(MiniLm.meanPool(a.data(), a.shape()), MiniLm.meanPool(b.data(), b.shape()));
                sum += c;
                min = Math.min(min, c);
            }
        }
        return new EmbeddingFidelity(sum / samples.size(), min);
    }

    @Override
    public String toString() {
        return String.format("mean %.4f min %.4f", mean, min);
    }
}
