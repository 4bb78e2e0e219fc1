package dev.qwtonnx.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

class HeapPolicyTest {
    @Test
    void theCommandLineLetsG1GiveFreeHeapBack() {
        HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        String min = vm.getVMOption("MinHeapFreeRatio").getValue();
        String max = vm.getVMOption("MaxHeapFreeRatio").getValue();
        try {
            assertTrue(HeapPolicy.apply(), "HotSpot takes both flags at run time");
            assertEquals(HeapPolicy.MIN_FREE, vm.getVMOption("MinHeapFreeRatio").getValue());
            assertEquals(HeapPolicy.MAX_FREE, vm.getVMOption("MaxHeapFreeRatio").getValue());
        } finally {
            vm.setVMOption("MaxHeapFreeRatio", max);
            vm.setVMOption("MinHeapFreeRatio", min);
        }
    }
}
