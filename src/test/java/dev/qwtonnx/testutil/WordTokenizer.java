package dev.qwtonnx.testutil;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A HuggingFace tokenizer.json with a known nine-word vocabulary: lower-cased, split on
 * whitespace, [CLS]=1 … [SEP]=2 around each line, unknown words 0. Ids of "the cat sat on mat"
 * are 4 5 6 7 8.
 */
public final class WordTokenizer {
    public static final int VOCAB = 9;

    private WordTokenizer() {
    }

    public static Path write(Path dir) throws IOException {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, """
                {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
                 "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
                 "post_processor": {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                              {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                   "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                                      "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}},
                 "decoder": null,
                 "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3,
                   "the": 4, "cat": 5, "sat": 6, "on": 7, "mat": 8}, "unk_token": "[UNK]"}}
                """);
        return f;
    }
}
