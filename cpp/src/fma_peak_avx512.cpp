// AVX-512 FMA throughput loop for colmax::fma_peak_gflops. Built with AVX-512 flags.
#include <immintrin.h>

#include <chrono>

#include "colmax/isa.hpp"
#include "colmax/peak.hpp"

namespace colmax {

double fma_peak_gflops(double seconds) {
  bool avx512 = false;
  for (Isa isa : supported_isas()) avx512 = avx512 || isa == Isa::avx512;
  if (!avx512) return 0.0;
  // 16 independent chains hide the FMA latency on both ports; the values stay bounded.
  constexpr int kChains = 16;
  constexpr long kInner = 1 << 16;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  long rounds = 0;
  double elapsed = 0.0;
  do {
    for (long n = 0; n < kInner; ++n)
#pragma GCC unroll 16
      for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    ++rounds;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(sum);  // keeps the loop from being optimised away
  (void)sink;
  return double(rounds) * kInner * kChains * 16 * 2 / elapsed / 1e9;
}

}  // namespace colmax
