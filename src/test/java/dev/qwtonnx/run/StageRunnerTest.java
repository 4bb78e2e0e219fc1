package dev.qwtonnx.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qwtonnx.calib.data.CalibrationSources;
import dev.qwtonnx.calib.data.Sample;
import dev.qwtonnx.model.ExternalData;
import dev.qwtonnx.testutil.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

class StageRunnerTest {
    private static final Fact<Integer> A = Fact.named("a");
    private static final Fact<Integer> B = Fact.named("b");
    private static final Fact<Resource> R = Fact.named("resource");

    /** A resource that says when it is closed. */
    private record Resource(String name, List<String> events) implements AutoCloseable {
        @Override
        public void close() {
            events.add("close " + name);
        }
    }

    private static Stage stage(String name, List<Fact<?>> in, List<Fact<?>> out, BiConsumer<RunContext, Facts> body) {
        return new BaseStage(name, in, out) {
            @Override
            public void run(RunContext ctx, Facts facts) {
                body.accept(ctx, facts);
            }
        };
    }

    private static RunContext ctx(List<String> log) {
        return new RunContext(CalibrationSources.ofList(List.<Sample>of()), null, null, log::add);
    }

    @Test
    void aStageConsumingWhatNoEarlierStageProducesFailsBeforeAnyWork() {
        List<String> events = new ArrayList<>();
        List<Stage> stages = List.of(
                stage("first", List.of(), List.of(), (c, f) -> events.add("first ran")),
                stage("needs-b", List.of(B), List.of(A), (c, f) -> f.put(A, 1)),
                stage("makes-b", List.of(), List.of(B), (c, f) -> f.put(B, 2)));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StageRunner.run("test", stages, ctx(new ArrayList<>()), new Facts()));
        assertTrue(e.getMessage().contains("needs-b consumes 'b'"), e.getMessage());
        assertEquals(List.of(), events);
    }

    @Test
    void aFactProducedTwiceIsRefused() {
        List<Stage> stages = List.of(
                stage("one", List.of(), List.of(A), (c, f) -> f.put(A, 1)),
                stage("two", List.of(), List.of(A), (c, f) -> f.put(A, 2)));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StageRunner.run("test", stages, ctx(new ArrayList<>()), new Facts()));
        assertTrue(e.getMessage().contains("'a' is produced twice"), e.getMessage());
    }

    @Test
    void aStageThatDoesNotProduceWhatItDeclaresIsNamed() {
        List<Stage> stages = List.of(stage("lazy", List.of(), List.of(A), (c, f) -> { }));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StageRunner.run("test", stages, ctx(new ArrayList<>()), new Facts()));
        assertEquals("stage lazy did not produce 'a'", e.getMessage());
    }

    @Test
    void aResourceIsClosedRightAfterTheLastStageThatReadsIt() {
        List<String> events = new ArrayList<>();
        List<String> log = new ArrayList<>();
        List<Stage> stages = List.of(
                stage("open", List.of(), List.of(R), (c, f) -> f.put(R, new Resource("r", events))),
                stage("use", List.of(R), List.of(A), (c, f) -> {
                    events.add("use");
                    f.put(A, 1);
                }),
                stage("after", List.of(A), List.of(B), (c, f) -> {
                    events.add("after");
                    f.put(B, f.get(A) + 1);
                }));
        Facts facts = new Facts();
        List<StageRunner.Timing> timings = StageRunner.run("test", stages, ctx(log), facts);
        assertEquals(List.of("use", "close r", "after"), events);
        assertFalse(facts.has(R));
        assertEquals(2, facts.get(B));
        assertEquals(List.of("open", "use", "after"), timings.stream().map(StageRunner.Timing::stage).toList());
        assertEquals("test stages: open -> use -> after", log.get(0));
        assertTrue(log.get(1).matches("stage open: \\d+\\.\\d{3} s"), log.get(1));
    }

    @Test
    void onFailureOpenResourcesAreClosedNewestFirstAndTheStageIsNamed() {
        List<String> events = new ArrayList<>();
        Fact<Resource> second = Fact.named("second");
        List<Stage> stages = List.of(
                stage("open", List.of(), List.of(R), (c, f) -> f.put(R, new Resource("r", events))),
                stage("open-2", List.of(), List.of(second), (c, f) -> f.put(second, new Resource("s", events))),
                stage("fail", List.of(R, second), List.of(), (c, f) -> {
                    throw new ArithmeticException("boom");
                }));
        ArithmeticException e = assertThrows(ArithmeticException.class,
                () -> StageRunner.run("test", stages, ctx(new ArrayList<>()), new Facts()));
        assertEquals(List.of("close s", "close r"), events);
        assertEquals(1, e.getSuppressed().length);
        assertEquals("test stage fail failed, after [open, open-2]", e.getSuppressed()[0].getMessage());
    }

    @Test
    void theQuantizeListsFindEveryFactTheyConsume() {
        Destination d = new Destination(Path.of("o.onnx"), null, Destination.Format.QDQ, ExternalData.Policy.DEFAULT,
                List.of(Path.of("o.report.json")), "calib", 0, false, false);
        List<Stage> core = QuantizeRun.stages(QuantizeRun.Options.defaults(), null);
        List<Stage> all = QuantizeRun.stages(QuantizeRun.Options.defaults(), d);
        StageRunner.check(core, QuantizeRun.given(TestModels.mlp(1), null, null), new ArrayList<>());
        StageRunner.check(all, QuantizeRun.given(TestModels.mlp(1), d, FidelityStage.FloatReuse.NONE), new ArrayList<>());
        // A destination with a report adds the destination stages at the end.
        List<String> expected = new ArrayList<>(core.stream().map(Stage::name).toList());
        expected.addAll(List.of("lower", "fidelity", "layer-fidelity", "fidelity-check", "save", "ort-graph", "report"));
        assertEquals(expected, all.stream().map(Stage::name).toList());
        // Without the destination the destination stages' facts are missing: the check says so.
        assertThrows(IllegalStateException.class,
                () -> StageRunner.check(all, new Facts().put(QuantizeRun.INPUT, TestModels.mlp(1)), new ArrayList<>()));
    }
}
