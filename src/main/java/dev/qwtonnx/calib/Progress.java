package dev.qwtonnx.calib;

/** Reports progress of a pass over the data; the CLI shows a bar, the API is silent by default. */
public interface Progress {
    void start(String task, long total);

    void step();

    void finish();

    Progress NONE = new Progress() {
        @Override
        public void start(String task, long total) {
        }

        @Override
        public void step() {
        }

        @Override
        public void finish() {
        }
    };
}
