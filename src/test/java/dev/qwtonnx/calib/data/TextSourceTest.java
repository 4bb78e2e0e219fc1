package dev.qwtonnx.calib.data;

import static dev.qwtonnx.calib.data.DataTestSupport.assertOneLine;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.testutil.MiniLm;
import dev.qwtonnx.testutil.WordTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Text files tokenized with a HuggingFace tokenizer.json into the inputs a BERT-like model takes. */
class TextSourceTest {
    @TempDir
    Path tmp;

    static final List<InputSpec> BERT = List.of(new InputSpec("input_ids", DataType.INT64, new long[] {-1, -1}),
            new InputSpec("attention_mask", DataType.INT64, new long[] {-1, -1}),
            new InputSpec("token_type_ids", DataType.INT64, new long[] {-1, -1}));

    Path wordTokenizer() throws IOException {
        return WordTokenizer.write(tmp);
    }

    Path text(String content) throws IOException {
        Path f = tmp.resolve("sentences.txt");
        Files.writeString(f, content);
        return f;
    }

    @Test
    void eachLineIsASampleOfItsOwnLength() throws IOException {
        Path f = text("The cat sat\n\n  on the mat  \nthe dog\n");
        try (TextSource src = TextSource.open(f, wordTokenizer(), 128, BERT)) {
            assertEquals(3, src.size());
            Sample s = src.sample(0);
            assertArrayEquals(new long[] {1, 5}, s.inputs().get("input_ids").shape());
            assertArrayEquals(new long[] {1, 4, 5, 6, 2}, s.inputs().get("input_ids").toLongs());
            assertArrayEquals(new long[] {1, 1, 1, 1, 1}, s.inputs().get("attention_mask").toLongs());
            assertArrayEquals(new long[] {0, 0, 0, 0, 0}, s.inputs().get("token_type_ids").toLongs());
            assertArrayEquals(new long[] {1, 7, 4, 8, 2}, src.sample(1).inputs().get("input_ids").toLongs());
            assertArrayEquals(new long[] {1, 4, 0, 2}, src.sample(2).inputs().get("input_ids").toLongs(), "unknown word");
            assertEquals(f + " line 3", src.sample(1).id());
            assertEquals(List.of("input_ids", "attention_mask", "token_type_ids"), List.copyOf(s.inputs().keySet()));
        }
    }

    @Test
    void truncatesToMaxLengthAndPadsToAFixedModelLength() throws IOException {
        Path f = text("the cat sat on the mat the cat sat on the mat\nthe cat\n");
        try (TextSource src = TextSource.open(f, wordTokenizer(), 6, BERT)) {
            assertArrayEquals(new long[] {1, 6}, src.sample(0).inputs().get("input_ids").shape());
            assertEquals(2L, src.sample(0).inputs().get("input_ids").toLongs()[5], "[SEP] kept at the end");
        }
        List<InputSpec> fixed = List.of(new InputSpec("input_ids", DataType.INT32, new long[] {1, 8}),
                new InputSpec("attention_mask", DataType.INT32, new long[] {1, 8}));
        try (TextSource src = TextSource.open(f, wordTokenizer(), 128, fixed)) {
            Sample s = src.sample(1);
            assertEquals(DataType.INT32, s.inputs().get("input_ids").type());
            assertArrayEquals(new long[] {1, 8}, s.inputs().get("input_ids").shape());
            assertArrayEquals(new long[] {1, 1, 1, 1, 0, 0, 0, 0}, s.inputs().get("attention_mask").toLongs());
            assertEquals(List.of("input_ids", "attention_mask"), List.copyOf(s.inputs().keySet()));
        }
    }

    @Test
    void theMiniLmTokenizerGivesWordPieceIds() throws IOException {
        Path tok = MiniLm.resourceFile("all-minilm-l6-v2-tokenizer.json", tmp);
        try (TextSource src = TextSource.open(text("Hello world\n"), tok, 128, BERT)) {
            // bert-base-uncased: [CLS] hello world [SEP]
            assertArrayEquals(new long[] {101, 7592, 2088, 102}, src.sample(0).inputs().get("input_ids").toLongs());
        }
    }

    @Test
    void userErrors() throws IOException {
        Path tok = wordTokenizer();
        Path f = text("the cat\n");
        List<InputSpec> vision = List.of(BERT.get(0), new InputSpec("pixel_values", DataType.FLOAT, new long[] {1, 3}));
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(f, tok, 16, vision)), "pixel_values");
        List<InputSpec> floats = List.of(new InputSpec("input_ids", DataType.FLOAT, new long[] {1, -1}));
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(f, tok, 16, floats)), "input_ids", "FLOAT");
        Path blank = tmp.resolve("blank.txt");
        Files.writeString(blank, "\n  \n");
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(blank, tok, 16, BERT)), blank.toString());
        Path missing = tmp.resolve("nope.txt");
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(missing, tok, 16, BERT)), missing.toString());
        Path badTok = tmp.resolve("bad.json");
        Files.writeString(badTok, "{\"model\": 42}");
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(f, badTok, 16, BERT)), badTok.toString());
        assertOneLine(assertThrows(QwtException.class, () -> TextSource.open(f, tok, 0, BERT)), "--max-length");
    }
}
