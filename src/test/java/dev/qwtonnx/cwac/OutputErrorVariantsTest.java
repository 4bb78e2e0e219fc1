package dev.qwtonnx.cwac;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.OrtRunner;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.GraphEditor;
import dev.qwtonnx.model.Model;
import dev.qwtonnx.model.Tensors;
import dev.qwtonnx.onnx.NodeProto;
import dev.qwtonnx.onnx.TensorProto;
import dev.qwtonnx.testutil.TestModels;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Acceptance's candidates measured on one session with their scales and biases fed as inputs: the
 * same errors as a session per candidate, and a candidate that differs in anything else measured on
 * a session of its own.
 */
class OutputErrorVariantsTest {
    /** The initializers of every DequantizeLinear's scale in the model (weight scales among them). */
    private static Set<String> scales(Model m) {
        Set<String> out = new LinkedHashSet<>();
        for (NodeProto n : m.graph().getNodeList()) {
            if (n.getOpType().equals("DequantizeLinear")) {
                out.add(n.getInput(1));
            }
        }
        out.retainAll(m.graph().getInitializerList().stream().map(TensorProto::getName).toList());
        return out;
    }

    private static long count(Model m, String opType) {
        return m.graph().getNodeList().stream().filter(n -> n.getOpType().equals(opType)).count();
    }

    /** {@code m} with the float initializer {@code name} multiplied by {@code k}. */
    static Model scaled(Model m, String name, float k) {
        GraphEditor g = new GraphEditor(m.graph());
        TensorProto t = g.initializer(name);
        float[] v = Tensors.floats(t);
        for (int i = 0; i < v.length; i++) {
            v[i] *= k;
        }
        g.putInitializer(Tensors.floatTensor(t.getName(), Tensors.dims(t), v));
        return m.withGraph(g.build());
    }

    @Test
    void candidatesDifferingInParametersShareOneSessionAndMeasureAlike() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>());
        List<Sample> samples = new ArrayList<>();
        TestModels.gaussian("x", 5, 6, new long[] {1, 3, 16, 16}).forEach(samples::add);
        OutputError judge = new OutputError(ForeignCompensationTest.floatModel(), samples, Grid.measures(theirs));
        Set<String> params = scales(theirs);
        List<String> names = new ArrayList<>(params);
        List<Model> candidates = List.of(theirs, scaled(theirs, names.get(0), 1.05f),
                scaled(scaled(theirs, names.get(0), 0.9f), names.get(names.size() - 1), 1.1f));
        try (OutputError.Variants v = judge.variants(theirs, params)) {
            for (Model c : candidates) {
                v.perSample(c); // the session is made on first use
            }
            long before = OrtRunner.counts()[0];
            for (Model c : candidates) {
                OutputError.Errors shared = v.perSample(c);
                OutputError.Errors own = judge.perSample(c);
                assertArrayEquals(own.parts(), shared.parts(), 1e-4 * own.total() + 1e-12);
                assertArrayEquals(own.cosines(), shared.cosines(), 1e-6);
            }
            // Three candidates measured both ways: three sessions for their own, none more for the shared one.
            assertEquals(3, OrtRunner.counts()[0] - before);
            // A candidate that changes an initializer outside the parameters gets a session of its own.
            String other = theirs.graph().getInitializerList().stream().map(TensorProto::getName)
                    .filter(n -> !params.contains(n) && theirs.graph().getInitializerList().stream()
                            .anyMatch(t -> t.getName().equals(n) && t.getDataType() == TensorProto.DataType.FLOAT_VALUE))
                    .findFirst().orElseThrow();
            Model changed = scaled(theirs, other, 1.5f);
            long at = OrtRunner.counts()[0];
            assertEquals(judge.perSample(changed).total(), v.perSample(changed).total(), 1e-12);
            assertEquals(2, OrtRunner.counts()[0] - at);
        }
    }

    @Test
    void onTheGridAFedMatMulScaleIsAFactorOnItsOutputAndMeasuresAsTheModelItself() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>());
        Set<String> params = scales(theirs);
        // A MatMul's weight scale: its DequantizeLinear reads a constant, its output is multiplied by fed / constant.
        Model factored = OutputError.scalesAsFactors(theirs, params);
        List<String> matMulScales = new ArrayList<>();
        for (NodeProto n : theirs.graph().getNodeList()) {
            if (n.getOpType().equals("MatMul") && new GraphEditor(theirs.graph()).producer(n.getInput(1)) != null) {
                NodeProto dq = new GraphEditor(theirs.graph()).producer(n.getInput(1));
                matMulScales.add(dq.getInput(1));
            }
        }
        assertFalse(matMulScales.isEmpty());
        for (String gs : matMulScales) {
            assertTrue(factored.graph().getNodeList().stream().noneMatch(n -> n.getOpType().equals("DequantizeLinear")
                    && n.getInput(1).equals(gs)), "the DequantizeLinear no longer reads the fed scale " + gs);
            assertEquals(1, factored.graph().getNodeList().stream().filter(n -> n.getOpType().equals("Div")
                    && n.getInput(0).equals(gs)).count());
        }
        String scale = matMulScales.get(0);
        assertEquals(theirs.graph().getOutputList(), factored.graph().getOutputList());
        // A Div and a Mul per MatMul scale; Conv scales stay in their DequantizeLinear (their channel is not the last
        // axis of the output), and so does a Gemm's whose bias is added inside it.
        long factors = count(factored, "Div") - count(theirs, "Div");
        assertTrue(factors >= matMulScales.size());
        assertEquals(count(theirs, "Mul") + factors, count(factored, "Mul"));
        assertEquals(theirs.graph().getNodeCount() + 2 * factors, factored.graph().getNodeCount());
        assertEquals(count(theirs, "Conv"), factored.graph().getNodeList().stream().filter(n -> n.getOpType().equals("Conv")
                && params.contains(new GraphEditor(factored.graph()).producer(n.getInput(1)).getInput(1))).count());

        List<Sample> samples = new ArrayList<>();
        TestModels.gaussian("x", 5, 6, new long[] {1, 3, 16, 16}).forEach(samples::add);
        OutputError judge = new OutputError(ForeignCompensationTest.floatModel(), samples, true);
        Model changed = scaled(theirs, scale, 1.07f);
        try (OutputError.Variants v = judge.variants(theirs, params)) {
            OutputError.Errors shared = v.perSample(changed);
            OutputError.Errors own = judge.perSample(changed);
            assertArrayEquals(own.parts(), shared.parts(), 1e-4 * own.total() + 1e-12);
            // Unchanged, the factor is 1: float rounding apart (the Mul keeps the MatMul from fusing with its Add).
            OutputError.Errors base = judge.perSample(theirs);
            assertArrayEquals(base.parts(), v.perSample(theirs).parts(), 1e-4 * base.total());
        }
    }

    @Test
    void aCandidateNoBetterOnTheEvenSamplesIsRuledOutThereAndTheOthersMeasureAsInFull() {
        Model theirs = ForeignCompensationTest.theirs(new HashMap<>());
        List<Sample> samples = new ArrayList<>();
        TestModels.gaussian("x", 5, 8, new long[] {1, 3, 16, 16}).forEach(samples::add);
        OutputError judge = new OutputError(ForeignCompensationTest.floatModel(), samples, Grid.measures(theirs));
        Set<String> params = scales(theirs);
        String first = params.iterator().next();
        try (OutputError.Variants v = judge.variants(theirs, params)) {
            OutputError.Errors base = v.perSample(theirs);
            // Far off and slightly off either way: whatever the samples say, each path agrees with the full one.
            int ruledOut = 0;
            for (float k : new float[] {3f, 0.3f, 1.01f, 0.99f}) {
                Model c = scaled(theirs, first, k);
                OutputError.Errors full = v.perSample(c);
                long runs = OrtRunner.counts()[1];
                OutputError.Errors beating = v.perSampleBeating(c, base);
                long made = OrtRunner.counts()[1] - runs;
                if (beating == null) {
                    ruledOut++;
                    assertFalse(StageAcceptance.keeps(base, full), "ruled out, so never kept: x" + k);
                    assertEquals(samples.size() / 2, made, "only the even samples ran");
                } else {
                    assertArrayEquals(full.parts(), beating.parts(), 0.0, "x" + k);
                    assertArrayEquals(full.cosines(), beating.cosines(), 0.0, "x" + k);
                    assertEquals(samples.size(), made);
                }
            }
            assertTrue(ruledOut >= 1, "a far-off candidate is ruled out on half the samples: " + ruledOut);
            // Against itself a model gains nothing: ruled out.
            assertNull(v.perSampleBeating(theirs, base));
        }
    }
}
