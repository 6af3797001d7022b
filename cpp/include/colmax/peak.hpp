// The yardstick for kernel efficiency: one core's measured float32 FMA throughput.
#pragma once

namespace colmax {

// GFLOP/s (2 flops per lane per FMA) of a loop of independent AVX-512 FMAs on the calling
// thread, run for about `seconds`; 0 when this build or CPU has no AVX-512.
double fma_peak_gflops(double seconds);

}  // namespace colmax
