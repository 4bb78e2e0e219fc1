package dev.qwtonnx.model;

import dev.qwtonnx.QwtException;
import dev.qwtonnx.onnx.AttributeProto;
import dev.qwtonnx.onnx.GraphProto;
import dev.qwtonnx.onnx.ModelProto;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.OperatorSetIdProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.onnx.ValueInfoProto;
import java.util.HashSet;
import java.util.Set;

/**
 * The essential structural rules of the ONNX checker, run before any native session sees a model
 * and on every model we write: nodes in topological order, every input defined, each tensor
 * produced once, opsets imported for every domain used, initializer payloads matching their dims.
 * It only reports; it never changes the model.
 */
public final class ModelChecker {
    private ModelChecker() {
    }

    public static void check(Model model) {
        ModelProto p = model.proto();
        Set<String> domains = new HashSet<>();
        for (OperatorSetIdProto o : p.getOpsetImportList()) {
            domains.add(Model.isDefaultDomain(o.getDomain()) ? "" : o.getDomain());
        }
        for (var f : p.getFunctionsList()) {
            domains.add(f.getDomain() + "/" + f.getName());
        }
        checkGraph(p.getGraph(), new HashSet<>(), domains, "graph");
    }

    private static void checkGraph(GraphProto g, Set<String> outer, Set<String> domains, String where) {
        Set<String> defined = new HashSet<>(outer);
        Set<String> produced = new HashSet<>();
        for (ValueInfoProto v : g.getInputList()) {
            defined.add(v.getName());
        }
        for (TensorProto t : g.getInitializerList()) {
            if (!Tensors.isExternal(t) && DataType.isKnown(t.getDataType())) {
                Tensors.toHost(t); // throws on a payload that does not match the dims
            }
            defined.add(t.getName());
        }
        Set<String> nodeNames = new HashSet<>();
        for (NodeProto n : g.getNodeList()) {
            String domain = Model.isDefaultDomain(n.getDomain()) ? "" : n.getDomain();
            if (!domains.contains(domain) && !domains.contains(n.getDomain() + "/" + n.getOpType())) {
                throw new QwtException(where + ": " + Nodes.describe(n) + " uses domain '" + n.getDomain()
                        + "' which the model does not import");
            }
            if (!n.getName().isEmpty() && !nodeNames.add(n.getName())) {
                throw new QwtException(where + ": duplicate node name '" + n.getName() + "'");
            }
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    checkGraph(a.getG(), defined, domains, where + "/" + n.getName() + "." + a.getName());
                }
                for (GraphProto sub : a.getGraphsList()) {
                    checkGraph(sub, defined, domains, where + "/" + n.getName() + "." + a.getName());
                }
            }
            for (String in : n.getInputList()) {
                if (!in.isEmpty() && !defined.contains(in)) {
                    throw new QwtException(where + ": " + Nodes.describe(n) + " reads '" + in
                            + "', which no earlier node, input or initializer defines (undefined or not in topological order)");
                }
            }
            for (String out : n.getOutputList()) {
                if (out.isEmpty()) {
                    continue;
                }
                if (!produced.add(out) || (defined.contains(out) && !outer.contains(out))) {
                    throw new QwtException(where + ": tensor '" + out + "' is defined more than once (by "
                            + Nodes.describe(n) + ")");
                }
                defined.add(out);
            }
        }
        for (ValueInfoProto v : g.getOutputList()) {
            if (!defined.contains(v.getName())) {
                throw new QwtException(where + ": graph output '" + v.getName() + "' is never produced");
            }
        }
    }
}
