package dev.qwtonnx.calib.data;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.qwtonnx.QwtException;
import dev.qwtonnx.model.DataType;
import dev.qwtonnx.model.HostTensor;
import java.io.IOException;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A UTF-8 text file, one sample per non-blank line, tokenized with a HuggingFace
 * {@code tokenizer.json} (DJL's binding of the Rust tokenizers) into the BERT-style inputs the
 * model asks for: {@code input_ids}, {@code attention_mask}, {@code token_type_ids}, as int64 or
 * int32 of shape [1, tokens]. Each line keeps its own length (truncated to {@code maxLength}),
 * unless the model fixes the sequence length, which pads every line to it. Lines are tokenized
 * when their sample is needed; close the source to free the native tokenizer.
 */
public final class TextSource implements IndexedSource, AutoCloseable {
    public static final Set<String> INPUTS = Set.of("input_ids", "attention_mask", "token_type_ids");

    private final List<String> lines;
    private final int[] lineNumbers;
    private final List<InputSpec> inputs;
    private final HuggingFaceTokenizer tokenizer;
    private final Path file;

    private TextSource(Path file, List<String> raw, List<InputSpec> inputs, HuggingFaceTokenizer tokenizer) {
        this.file = file;
        List<String> kept = new ArrayList<>();
        List<Integer> numbers = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            if (!raw.get(i).isBlank()) {
                kept.add(raw.get(i).strip());
                numbers.add(i + 1);
            }
        }
        this.lines = List.copyOf(kept);
        this.lineNumbers = numbers.stream().mapToInt(Integer::intValue).toArray();
        this.inputs = inputs;
        this.tokenizer = tokenizer;
    }

    public static TextSource open(Path textFile, Path tokenizerJson, int maxLength, List<InputSpec> inputs) {
        if (maxLength < 1) {
            throw new QwtException("--max-length must be at least 1, got " + maxLength);
        }
        long fixedLength = -1;
        for (InputSpec in : inputs) {
            if (!INPUTS.contains(in.name())) {
                throw new QwtException("model input '" + in.name() + "' cannot be made from text: the text source gives "
                        + "input_ids, attention_mask and token_type_ids (use --calib with .npz files for other inputs)");
            }
            if (in.type() != DataType.INT64 && in.type() != DataType.INT32) {
                throw new QwtException("model input '" + in.name() + "' is " + in.type()
                        + "; token inputs are INT64 or INT32");
            }
            if (in.rankKnown()) {
                long[] s = in.shape();
                if (s.length != 2 || s[0] > 1) {
                    throw new QwtException("model input '" + in.name() + "' has shape " + in.shapeText()
                            + "; text gives [1, tokens]");
                }
                if (s[1] >= 0) {
                    fixedLength = s[1];
                }
            }
        }
        if (!inputs.stream().anyMatch(i -> i.name().equals("input_ids"))) {
            throw new QwtException("the model takes no 'input_ids' input, so text cannot feed it (it takes "
                    + inputs.stream().map(InputSpec::name).toList() + ")");
        }
        List<String> lines = readLines(textFile);
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new QwtException("tokenizer file not found: " + tokenizerJson);
        }
        Map<String, String> options = new LinkedHashMap<>();
        options.put("truncation", "true");
        if (fixedLength > 0) {
            options.put("maxLength", Long.toString(fixedLength));
            options.put("padding", "max_length");
        } else {
            options.put("maxLength", Integer.toString(maxLength));
            options.put("padding", "false");
        }
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.newInstance(tokenizerJson, options);
        } catch (IOException | RuntimeException e) {
            throw new QwtException(tokenizerJson + ": not a HuggingFace tokenizer.json ("
                    + String.valueOf(e.getMessage()).replace('\n', ' ') + ")", e);
        }
        return new TextSource(textFile, lines, List.copyOf(inputs), tok);
    }

    private static List<String> readLines(Path textFile) {
        if (!Files.isRegularFile(textFile)) {
            throw new QwtException("text file not found: " + textFile);
        }
        List<String> raw;
        try {
            raw = Files.readAllLines(textFile, StandardCharsets.UTF_8);
        } catch (MalformedInputException e) {
            throw new QwtException(textFile + ": not UTF-8 text", e);
        } catch (IOException e) {
            throw new QwtException("cannot read " + textFile + ": " + e.getMessage(), e);
        }
        if (raw.stream().allMatch(String::isBlank)) {
            throw new QwtException(textFile + ": no text (every line is blank)");
        }
        return raw;
    }

    @Override
    public int size() {
        return lines.size();
    }

    @Override
    public Sample sample(int index) {
        Encoding e = tokenizer.encode(lines.get(index));
        long[] shape = {1, e.getIds().length};
        Map<String, HostTensor> fed = new LinkedHashMap<>();
        for (InputSpec in : inputs) {
            long[] v = switch (in.name()) {
                case "input_ids" -> e.getIds();
                case "attention_mask" -> e.getAttentionMask();
                default -> e.getTypeIds();
            };
            fed.put(in.name(), in.type() == DataType.INT64 ? HostTensor.ofLongs(shape, v) : HostTensor.ofInts(shape, ints(v)));
        }
        return new Sample(file + " line " + lineNumbers[index], fed);
    }

    private static int[] ints(long[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Math.toIntExact(v[i]);
        }
        return out;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
