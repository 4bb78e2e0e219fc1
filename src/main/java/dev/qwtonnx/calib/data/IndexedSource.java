package dev.qwtonnx.calib.data;

import java.util.Iterator;
import java.util.NoSuchElementException;

/** A calibration source with random access: sample i is loaded on demand. */
public interface IndexedSource extends CalibrationSource {
    Sample sample(int index);

    @Override
    default Iterator<Sample> iterator() {
        return new Iterator<>() {
            int i;

            @Override
            public boolean hasNext() {
                return i < size();
            }

            @Override
            public Sample next() {
                if (i >= size()) {
                    throw new NoSuchElementException();
                }
                return sample(i++);
            }
        };
    }
}
