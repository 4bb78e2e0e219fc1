package dev.qwtonnx.cwac;

import dev.qwtonnx.quant.LayerKind;

/**
 * A quantized layer as found in a QDQ graph, with the edges compensation reads and folds into.
 *
 * @param name          the Conv / MatMul / Gemm node's name
 * @param input         the dequantized activation the node reads
 * @param inputScale    the activation's scale (scalar initializer of its DequantizeLinear)
 * @param weightScale   initializer holding the per-channel weight scales
 * @param biasQuantized int32 bias initializer (Conv/Gemm; a MatMul's where its bias Add reads it
 *                      through a DequantizeLinear), or null
 * @param biasScale     initializer holding the bias scales, or null
 * @param biasAdd       name of the Add node adding a bias after a MatMul, or null
 * @param biasAddConst  the float constant that Add reads, or null (also where it reads an int32 bias)
 * @param output        the layer's float output in the quantized model (what an output Q reads)
 * @param channels      output channels
 * @param qlinear       for a QLinearConv / QLinearMatMul / com.microsoft QGemm / MatMulIntegerToFloat node
 *                      (QOperator form), its quantization parameters; null for a QDQ layer. A
 *                      MatMulIntegerToFloat's float bias input is its {@code biasAddConst}, the node
 *                      itself its {@code biasAdd}
 * @param from          the float node the layer was quantized from, as our quantizer records it on
 *                      the layer node ({@link dev.qwtonnx.model.Nodes#FROM}); null in another tool's model
 * @param perTensor     whether the weight has one scale for the whole tensor (a target that takes no
 *                      per-channel weights for this kind): the fold can then shift, not scale, each channel
 */
public record QdqLayer(LayerKind kind, String name, String input, float inputScale, String weightScale,
        String biasQuantized, String biasScale, String biasAdd, String biasAddConst, String output, int channels,
        QLinear qlinear, String from, boolean perTensor) {

    public QdqLayer(LayerKind kind, String name, String input, float inputScale, String weightScale,
            String biasQuantized, String biasScale, String biasAdd, String biasAddConst, String output, int channels,
            QLinear qlinear, String from) {
        this(kind, name, input, inputScale, weightScale, biasQuantized, biasScale, biasAdd, biasAddConst, output,
                channels, qlinear, from, false);
    }

    /**
     * A QOperator layer's scale and zero-point inputs. Its input and (without a bias Add after a
     * DequantizeLinear) its output are uint8/int8 tensors: they are dequantized for measuring. An
     * int32 bias has no scale initializer: its scale is x_scale·w_scale by definition. A node with
     * a float output (MatMulIntegerToFloat, QGemm without y_scale) has null {@code yScale}.
     */
    public record QLinear(String xScale, String xZeroPoint, String yScale, String yZeroPoint) {
    }

    public QdqLayer(LayerKind kind, String name, String input, float inputScale, String weightScale,
            String biasQuantized, String biasScale, String biasAdd, String biasAddConst, String output, int channels) {
        this(kind, name, input, inputScale, weightScale, biasQuantized, biasScale, biasAdd, biasAddConst, output,
                channels, null, null);
    }

    public QdqLayer(LayerKind kind, String name, String input, float inputScale, String weightScale,
            String biasQuantized, String biasScale, String biasAdd, String biasAddConst, String output, int channels,
            QLinear qlinear) {
        this(kind, name, input, inputScale, weightScale, biasQuantized, biasScale, biasAdd, biasAddConst, output,
                channels, qlinear, null);
    }

    /** This layer, recorded as quantized from the float node {@code from}. */
    public QdqLayer withFrom(String from) {
        return new QdqLayer(kind, name, input, inputScale, weightScale, biasQuantized, biasScale, biasAdd, biasAddConst,
                output, channels, qlinear, from, perTensor);
    }

    /** This layer, its weight quantized with one scale for the whole tensor. */
    public QdqLayer withPerTensorWeight() {
        return new QdqLayer(kind, name, input, inputScale, weightScale, biasQuantized, biasScale, biasAdd, biasAddConst,
                output, channels, qlinear, from, true);
    }

    /** Whether {@link #output()} is the integer output of a QOperator node (dequantized for measuring). */
    public boolean quantizedOutput() {
        return qlinear != null && qlinear.yScale() != null && biasAdd == null;
    }

    /** The axis of the output tensor that indexes channels: 1 for Conv (NCHW), the last otherwise. */
    public int outputChannelAxis(int rank) {
        return kind == LayerKind.CONV ? 1 : rank - 1;
    }

    public boolean hasBias() {
        return biasQuantized != null || biasAddConst != null;
    }
}
