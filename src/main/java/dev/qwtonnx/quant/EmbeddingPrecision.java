package dev.qwtonnx.quant;

/** How the tables Gather nodes read rows of (token, position, type embeddings) are stored. */
public enum EmbeddingPrecision {
    /** int8 with one scale per row ({@link EmbeddingQuantizer}). */
    INT8,
    /** As in the float model. */
    FLOAT
}
