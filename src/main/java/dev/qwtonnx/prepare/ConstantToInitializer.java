package dev.qwtonnx.prepare;

import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import dev.qwtonnx.pass.Pass;
import dev.qwtonnx.pass.PassResult;
import java.util.HashSet;
import java.util.Set;

/**
 * Turns top-level {@code Constant} nodes into initializers of the same name, so that weights held
 * in Constant nodes (PaddlePaddle exports keep every weight there) are seen as constants and
 * quantized. Handles {@code value} and {@code value_float(s)}/{@code value_int(s)}. Constants that
 * are graph outputs, or of a kind with no tensor form here (sparse, strings), stay nodes. Only the
 * top-level graph is rewritten; subgraphs reading a top-level Constant see the initializer of the
 * same name. Before IR version 4 every initializer had to be a graph input too, so such old models
 * are left as they are.
 */
public final class ConstantToInitializer implements Pass {
    @Override
    public String name() {
        return "constant-to-initializer";
    }

    @Override
    public PassResult run(Model model) {
        if (model.proto().getIrVersion() < 4) {
            return PassResult.unchanged(model);
        }
        GraphProto g = model.graph();
        Set<String> outputs = new HashSet<>();
        for (ValueInfoProto v : g.getOutputList()) {
            outputs.add(v.getName());
        }
        GraphProto.Builder b = g.toBuilder().clearNode();
        boolean changed = false;
        for (NodeProto n : g.getNodeList()) {
            TensorProto t = n.getOpType().equals("Constant") && Model.isDefaultDomain(n.getDomain())
                    && n.getOutputCount() == 1 && !outputs.contains(n.getOutput(0)) ? asTensor(n) : null;
            if (t == null) {
                b.addNode(n);
                continue;
            }
            b.addInitializer(t.toBuilder().setName(n.getOutput(0)));
            changed = true;
        }
        return changed ? PassResult.changed(model.withGraph(b.build())) : PassResult.unchanged(model);
    }

    private static TensorProto asTensor(NodeProto n) {
        if (n.getAttributeCount() != 1) {
            return null;
        }
        AttributeProto a = n.getAttribute(0);
        String out = n.getOutput(0);
        return switch (a.getName()) {
            case "value" -> a.hasT() && !Tensors.isExternal(a.getT()) ? a.getT() : null;
            case "value_float" -> Tensors.floatScalar(out, a.getF());
            case "value_floats" -> {
                float[] v = new float[a.getFloatsCount()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = a.getFloats(i);
                }
                yield Tensors.floatTensor(out, new long[] {v.length}, v);
            }
            case "value_int" -> Tensors.int64Tensor(out, new long[0], new long[] {a.getI()});
            case "value_ints" -> Tensors.int64Tensor(out, new long[] {a.getIntsCount()},
                    a.getIntsList().stream().mapToLong(Long::longValue).toArray());
            default -> null;
        };
    }

}
