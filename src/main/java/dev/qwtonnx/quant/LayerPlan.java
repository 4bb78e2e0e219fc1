package dev.qwtonnx.quant;

import dev.qwtonnx.model.Nodes;
import dev.qwtonnx.onnx.NodeProto;

/**
 * One layer of the float model chosen for quantization, with the edges the quantizer rewires.
 *
 * @param node       the Conv / MatMul / Gemm node
 * @param input      the activation it reads (input 0)
 * @param weight     the float weight initializer (input 1)
 * @param weightAxis the output-channel axis of the weight
 * @param bias       the float bias initializer of a Conv/Gemm, or null
 * @param biasAdd    for a MatMul: the Add that adds a constant bias to its output, or null
 * @param biasAddConst the constant input name of {@code biasAdd}
 * @param output     the layer's output: the node's output, or the bias Add's output
 * @param channels   the number of output channels
 * @param quantizeOutput whether an output Q follows the layer
 * @param absorbedRelu a Relu after the output that the output Q makes redundant, or null
 * @param qBeforeBias  the output Q reads the MatMul itself, ahead of its bias Add (which then reads
 *                     the DQ): for targets that quantize every op's own output
 */
public record LayerPlan(LayerKind kind, NodeProto node, String input, String weight, int weightAxis, String bias,
        NodeProto biasAdd, String biasAddConst, String output, int channels, boolean quantizeOutput,
        NodeProto absorbedRelu, boolean qBeforeBias) {

    /** The tensor whose range sets the output quantization (after the absorbed Relu, if any). */
    public String outputRangeTensor() {
        return absorbedRelu != null ? absorbedRelu.getOutput(0) : quantizedOutput();
    }

    /** The tensor the output Q reads: the MatMul's own output ahead of its bias Add, or {@link #output}. */
    public String quantizedOutput() {
        return qBeforeBias ? node.getOutput(0) : output;
    }

    public String name() {
        return node.getName();
    }

    @Override
    public String toString() {
        return Nodes.describe(node);
    }
}
