// AVX-512 MaxSim: 16 query tokens per register, 10 document tokens per tile (20 accumulators).
// Ten rows keep every row pointer in a general register; with twelve the compiler spills them
// inside the inner loop and loses ~10% (measured in cache, 32 x 128 query).
#include "plaid_kernels.hpp"
#include "simd_common.hpp"

namespace colmax::kernels {
namespace avx512 {

struct F32 {
  using reg = __m512;
  using acc = reg;
  using oper = __m512;
  using q_elem = float;
  using d_elem = float;
  static constexpr int lanes = 16;
  static constexpr int tile_rows = 10;
  static constexpr bool quantized = false;

  static std::int64_t steps(std::int64_t dim) { return dim; }
  static float pack_query(const float* row, std::int64_t s, std::int64_t) { return row[s]; }
  static reg zero() { return _mm512_setzero_ps(); }
  static oper load_q(const float* p) { return _mm512_load_ps(p); }
  static oper bcast_d(const float* p) { return _mm512_set1_ps(*p); }
  static reg madd(reg acc, oper q, oper d) { return _mm512_fmadd_ps(q, d, acc); }
  static reg load_f(const float* p) { return _mm512_load_ps(p); }
  static void store_f(float* p, reg v) { _mm512_store_ps(p, v); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg select_gt(reg a, reg b, reg x, reg y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x);
  }

  static void widen_f16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
    for (; i < n; ++i) out[i] = f16_to_float(in[i]);
  }
  static void widen_bf16(const std::uint16_t* in, float* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)));
      _mm512_storeu_si512(out + i, _mm512_slli_epi32(wide, 16));
    }
    for (; i < n; ++i) out[i] = bf16_to_float(in[i]);
  }
};

#include "maxsim_tiles.inl"
#include "plaid_tiles.inl"

}  // namespace avx512

void score_avx512(const Batch& batch) {
  if (batch.docs->dtype == DType::i8)
    score_int8_avx2(batch);  // vpmaddubsw without VNNI: the AVX2 kernel does it
  else
    avx512::score_widening<avx512::F32>(batch);
}

const PlaidKernels plaid_avx512 = avx512::plaid_kernels<avx512::F32>();

}  // namespace colmax::kernels
