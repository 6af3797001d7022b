// AVX2 + FMA MaxSim: 8 query tokens per register, 6 document tokens per tile (12 accumulators
// of the 16 ymm registers). The only file built with AVX2 flags.
#include "plaid_kernels.hpp"
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx2 {

struct F32 {
  using reg = __m256;
  using oper = __m256;
  using q_elem = float;
  using d_elem = float;
  static constexpr int lanes = 8;
  static constexpr int tile_rows = 6;

  static std::int64_t steps(std::int64_t dim) { return dim; }
  static float pack_query(const float* row, std::int64_t s, std::int64_t) { return row[s]; }
  static reg zero() { return _mm256_setzero_ps(); }
  static oper load_q(const float* p) { return _mm256_load_ps(p); }
  static oper bcast_d(const float* p) { return _mm256_broadcast_ss(p); }
  static reg madd(reg acc, oper q, oper d) { return _mm256_fmadd_ps(q, d, acc); }
  static reg load_f(const float* p) { return _mm256_load_ps(p); }
  static void store_f(float* p, reg v) { _mm256_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg select_gt(reg a, reg b, reg x, reg y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ)); }

  static void widen_f16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    for (; i < n; ++i) out[i] = f16_to_float(in[i]);
  }
  static void widen_bf16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(wide, 16));
    }
    for (; i < n; ++i) out[i] = bf16_to_float(in[i]);
  }
};

#include "maxsim_tiles.inl"
#include "plaid_tiles.inl"

}  // namespace avx2

void score_avx2(const Batch& batch) { avx2::score_widening<avx2::F32>(batch); }

const PlaidKernels plaid_avx2 = avx2::plaid_kernels<avx2::F32>();

}  // namespace colmax::kernels
