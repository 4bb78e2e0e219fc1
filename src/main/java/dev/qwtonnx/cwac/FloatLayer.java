package dev.qwtonnx.cwac;

import dev.qwtonnx.onnx.NodeProto;
import java.util.List;

/**
 * The float model's counterpart of a quantized layer: the layer node, the nodes after it that the
 * quantized layer has absorbed (a MatMul's bias Add; a BatchNormalization another tool folded into
 * the Conv), each reading constants besides the chain, and the tensor the quantized layer's output
 * is compared with.
 */
public record FloatLayer(NodeProto node, List<NodeProto> tail, String output) {
    public FloatLayer {
        tail = List.copyOf(tail);
    }
}
